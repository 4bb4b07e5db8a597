"""/v1/models: the model names the routing serves (globs are listed as written)."""

from fastapi import APIRouter, Request

from threadloom.api.responses import JSONResponse
from threadloom.domain.errors import NotFound

router = APIRouter()


def _model(route) -> dict:
    return {"id": route.pattern, "object": "model", "created": 0, "owned_by": f"threadloom:{route.backend}"}


@router.get("/models")
async def list_models(request: Request):
    routes = request.app.state.services.router.routes
    return JSONResponse({"object": "list", "data": [_model(r) for r in routes]})


@router.get("/models/{model:path}")
async def get_model(request: Request, model: str):
    router_ = request.app.state.services.router
    try:
        route = router_.route_for(model)
    except LookupError:
        raise NotFound(f"The model '{model}' does not exist", code="model_not_found") from None
    return JSONResponse({**_model(route), "id": model})
