"""GET /v1/prompts/similar: past results whose prompts say what this one says."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from genqueue.api.auth import PrincipalDep
from genqueue.api.deps import RuntimeDep
from genqueue.api.errors import error_responses
from genqueue.api.schemas import TaskPublic
from genqueue.prompts import PromptSearch

router = APIRouter(prefix="/v1", tags=["prompts"])


def _search(request: Request, runtime: RuntimeDep) -> PromptSearch:
    search: PromptSearch | None = getattr(request.app.state, "prompt_search", None)
    if search is None:
        search = request.app.state.prompt_search = PromptSearch(runtime.store)
    return search


@router.get("/prompts/similar", responses=error_responses(503))
async def similar(
    request: Request,
    runtime: RuntimeDep,
    caller: PrincipalDep,
    q: Annotated[str, Query(min_length=1, max_length=2000, description="a prompt")],
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    kind: Annotated[str | None, Query(max_length=100)] = None,
    scan: Annotated[int, Query(ge=1, le=20_000, description="newest results looked at")] = 2000,
) -> list[dict[str, Any]]:
    """Succeeded tasks ranked by how close their prompt is to ``q`` (cosine of MiniLM
    sentence vectors), each with its score and its task as ``GET /v1/tasks/{id}`` shows it."""
    user = None if caller.sees_all else caller.user  # a user key searches its own tasks
    hits = await _search(request, runtime).similar(q.strip() or q, k, kind, scan, user)
    return [
        {
            "score": round(hit.score, 4),
            "task": TaskPublic.of(hit.task, None).model_dump(mode="json"),
        }
        for hit in hits
    ]
