"""Every stand-in the tests use, in one place: the outside world of the LLM backends
(OpenAI-compatible and llama servers, vLLM, a tiny transformers LM), Ray helpers, the PE loop's
components (`loop`), and the model-free LLM / embedder / data of the end-to-end runs (`pe`)."""
