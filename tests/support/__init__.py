"""Real stand-ins for what tests cannot reach: a local OpenAI-compatible server, a fake coding-agent CLI."""
