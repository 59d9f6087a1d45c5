"""The LLM backends, one module each: embedded (xllamacpp), openai (hosted APIs and OpenAI-compatible
servers), vllm (the offline engine), transformers (Hugging Face causal LMs).

Nothing is imported here: each backend pulls in its own optional dependency, so `augpe.llm.make_llm`
imports only the one a config asks for.
"""
