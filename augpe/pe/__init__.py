"""Private Evolution: the loop (Algorithm 1), the RANDOM and VARIATION APIs, selection, prompts, text operations. No disk I/O."""
