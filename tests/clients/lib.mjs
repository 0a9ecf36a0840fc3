// What every client script shares: its configuration from the environment, and how it reports.
// A script prints ONE JSON line on stdout and exits 0, or prints the error on stderr and exits 1.
import { basename } from "node:path";

/** `AURA_BASE_URL` (e.g. http://127.0.0.1:PORT/v1), `AURA_API_KEY`, `AURA_MODEL`; optional
 * `AURA_PROMPT` and `AURA_STREAM=1` (the scripts that can do both stream only then). */
export function config() {
  const missing = ["AURA_BASE_URL", "AURA_API_KEY", "AURA_MODEL"].filter(
    (name) => !process.env[name],
  );
  if (missing.length > 0) {
    throw new Error(`missing environment variables: ${missing.join(", ")}`);
  }
  return {
    baseURL: process.env.AURA_BASE_URL,
    apiKey: process.env.AURA_API_KEY,
    model: process.env.AURA_MODEL,
    prompt: process.env.AURA_PROMPT || "Say hello",
    stream: process.env.AURA_STREAM === "1",
  };
}

/** The fixed local tool every tool script offers: the weather in a city. */
export const WEATHER_PARAMETERS = {
  type: "object",
  properties: { city: { type: "string", description: "The city's name" } },
  required: ["city"],
  additionalProperties: false,
};

export function getWeather({ city }) {
  return { city, temperature_c: 21, conditions: "sunny" };
}

function describe(error) {
  const lines = [error?.stack ?? String(error)];
  // openai SDK: APIError has status and error; AI SDK: APICallError has statusCode, responseBody
  for (const key of ["status", "error", "statusCode", "url", "responseBody", "cause"]) {
    if (error?.[key] !== undefined) {
      const value = error[key];
      lines.push(`${key}: ${typeof value === "string" ? value : JSON.stringify(value)}`);
    }
  }
  return lines.join("\n");
}

/** Run `main`, print its result as one JSON line, exit 0; on any error exit 1. */
export async function run(main) {
  const name = basename(process.argv[1] ?? "script");
  let code = 0;
  try {
    const result = await main(config());
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } catch (error) {
    process.stderr.write(`${name}: ${describe(error)}\n`);
    code = 1;
  }
  // pipes are written synchronously on POSIX; exit at once, not when idle sockets time out
  process.exit(code);
}
