"""Which backend serves which model name: the routes of the configuration, first match wins."""

from __future__ import annotations

import fnmatch

from threadloom.config import ModelRoute, Settings
from threadloom.llm.base import ModelBackend


class ModelRouter:
    def __init__(self, settings: Settings):
        self._settings = settings
        self._routes = settings.routes
        self._backends: dict[int, ModelBackend] = {}

    @property
    def routes(self) -> tuple[ModelRoute, ...]:
        return self._routes

    def route_for(self, model: str) -> ModelRoute:
        for route in self._routes:
            if route.pattern == model or fnmatch.fnmatchcase(model, route.pattern):
                return route
        raise LookupError(f"no backend is configured for model {model!r}")

    def resolve(self, model: str) -> tuple[ModelBackend, str]:
        """The backend for `model` and the model name to send it."""
        route = self.route_for(model)
        return self.backend_of(route), route.model or model

    def backend_of(self, route: ModelRoute) -> ModelBackend:
        index = self._routes.index(route)
        backend = self._backends.get(index)
        if backend is None:
            backend = self._make_backend(route)
            self._backends[index] = backend
        return backend

    def _make_backend(self, route: ModelRoute) -> ModelBackend:
        if route.backend == "openai_compat":
            from threadloom.llm.openai_compat import OpenAICompatBackend

            return OpenAICompatBackend(route.url, route.api_key, timeout=self._settings.upstream_timeout)
        if route.backend == "embedded":
            from threadloom.llm.embedded import EmbeddedBackend

            return EmbeddedBackend(
                model_path=route.model_path or self._settings.model_path,
                context_window=self._settings.embedded_context,
                n_threads=self._settings.embedded_threads,
                max_turn_tokens=self._settings.embedded_max_tokens,
            )
        raise LookupError(f"unknown backend {route.backend!r}")

    async def aclose(self) -> None:
        for backend in self._backends.values():
            await backend.aclose()
        self._backends.clear()
