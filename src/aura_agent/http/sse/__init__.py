"""Server-Sent Events for every streaming API: encoding, the response, and stream control."""
