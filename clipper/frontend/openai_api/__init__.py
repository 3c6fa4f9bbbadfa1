"""The OpenAI-compatible API (`/v1/models`, `/v1/completions`, `/v1/chat/completions`,
`/v1/embeddings`): `api.OpenAIApi` holds the routes, `requests` reads the bodies, `replies`
shapes the answers, `streaming` the Server-Sent Events, `results` what the data plane
answered, `errors` OpenAI's error shape.
"""
