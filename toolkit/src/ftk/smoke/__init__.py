"""The client smoke test run after every deploy (`ftk smoke`): the OpenAI SDK against the gateway or vLLM."""
