"""The LangGraph Agent Server door's own logic, on the same engine as the OpenAI door:
the built-in `agent` graph, LangGraph assistants/threads/runs over the engine's stored
objects, LangChain message dicts, and the translation of the engine's run events into
LangGraph stream modes. HTTP lives in threadloom.api.langgraph."""
