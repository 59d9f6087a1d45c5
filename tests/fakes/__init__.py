"""Local stand-ins for the outside world (OpenAI-compatible servers, vLLM) used by the LLM tests."""
