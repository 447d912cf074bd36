"""OpenAI's Files and Batch APIs: records, the store port, input lines, the runner."""
