// The AI SDK's OpenAI-compatible provider pointed at the configured /v1.
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";

/** The configured model; structured outputs on, so a schema is sent as `json_schema`. */
export function aiModel({ baseURL, apiKey, model }) {
  const provider = createOpenAICompatible({
    name: "aura",
    baseURL,
    apiKey,
    includeUsage: true,
    supportsStructuredOutputs: true,
  });
  return provider(model);
}

/** Consume a streamText result's fullStream; an "error" part fails the script (streamText
 * would otherwise only log it). Returns the parts by type, and the text and reasoning seen. */
export async function drain(result) {
  const types = {};
  let text = "";
  let reasoning = "";
  for await (const part of result.fullStream) {
    types[part.type] = (types[part.type] ?? 0) + 1;
    if (part.type === "error") {
      throw part.error instanceof Error ? part.error : new Error(JSON.stringify(part.error));
    }
    if (part.type === "text-delta") text += part.text;
    if (part.type === "reasoning-delta") reasoning += part.text;
  }
  return { types, text, reasoning };
}
