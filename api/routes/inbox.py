"""The manager's inbox under ``/api/v1`` (the use cases are ``api.inbox``; this module parses and answers).

* ``GET /tenants/{tenant}/conversations`` — every company's conversations of the tenant (``company``
  filter by slug), same filters and cursor as the company list in ``api.routes.admin``;
* ``POST .../conversations/{id}/resolve``; ``PUT .../conversations/{id}/assignee``;
* ``GET|POST .../conversations/{id}/notes``, ``DELETE .../notes/{note_id}`` — private notes;
* ``PUT .../conversations/{id}/labels``; ``GET|POST /labels``, ``DELETE /labels/{id}`` — the company's label set;
* ``GET|POST /canned-replies``, ``PATCH|DELETE /canned-replies/{id}``.

Like ``api.routes.admin``: ``AdminDep`` on the router, the tenant and company from ``TenantScopeDep`` /
``CompanyDep`` (a foreign id is a 404). A page's next cursor is returned in the ``X-Next-Cursor``
header and as a ``Link: <...>; rel="next"`` header (RFC 8288); the body stays a list.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from pydantic import AwareDatetime, BaseModel, Field

from api.deps import AccessDep, AdminDep, CompanyDep, SessionDep, TenantScopeDep
from api.inbox import (
    ConversationFilter,
    Page,
    add_note,
    assign,
    create_canned_reply,
    create_label,
    delete_canned_reply,
    delete_label,
    delete_note,
    list_canned_replies,
    list_conversations,
    list_labels,
    list_notes,
    resolve,
    set_conversation_labels,
    update_canned_reply,
)
from api.schemas import ConversationDetail, ConversationOut
from core.models import PaymentStatus

router = APIRouter(prefix="/api/v1", tags=["inbox"], dependencies=[AdminDep])

_TENANT = "/tenants/{tenant}"
_COMPANY = _TENANT + "/companies/{company}"
_CONVERSATION = _COMPANY + "/conversations/{conversation_id}"


def conversation_filters(
    access: AccessDep,
    status_: Annotated[list[Literal["open", "pending", "resolved"]] | None,
                       Query(alias="status", description="open, pending, resolved (repeat for several)")] = None,
    channel: Annotated[list[str] | None, Query(description="Inbox kind: telegram, whatsapp_waha, email, "
                                                           "webchat, console (repeat for several)")] = None,
    needs_human: Annotated[bool | None, Query(description="Taken over by a person or flagged for one")] = None,
    assignee: Annotated[uuid.UUID | None, Query(description="Assigned to this user id")] = None,
    assigned: Annotated[Literal["me"] | None, Query(
        description="`me`: assigned to the signed-in person (400 for an API key or the admin token, "
                    "which are nobody)")] = None,
    has_order: Annotated[bool | None, Query(description="Has (true) or has no (false) order")] = None,
    payment_status: Annotated[list[PaymentStatus] | None, Query(
        description="One of its orders has this payment status (repeat for several)")] = None,
    label: Annotated[list[str] | None, Query(description="Carries this label (repeat: all of them)")] = None,
    since: Annotated[AwareDatetime | None, Query(description="Last activity at or after (ISO-8601 with zone)")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Last activity before (ISO-8601 with zone)")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text of a message or the contact's name, "
                                                                "phone or e-mail contains this (any case)")] = None,
) -> ConversationFilter:
    """The list filters of the query string (``api.inbox.ConversationFilter``). ``assigned=me`` is the
    caller's user id; 400 when the caller is no person or ``assignee`` names someone too."""
    if assigned == "me":
        if access.principal.user_id is None:
            raise HTTPException(status.HTTP_400_BAD_REQUEST,
                                "assigned=me needs a signed-in person; API keys and the admin token are nobody "
                                "(filter by assignee=<user id> instead)")
        if assignee is not None and assignee != access.principal.user_id:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "give assigned=me or assignee, not both")
        assignee = access.principal.user_id
    return ConversationFilter(
        channels=tuple(channel or ()), statuses=tuple(status_ or ()), needs_human=needs_human,
        assignee_user_id=assignee, has_order=has_order, payment_statuses=tuple(payment_status or ()),
        labels=tuple(label or ()), since=since, until=until, text=q,
    )


ConversationFilterDep = Annotated[ConversationFilter, Depends(conversation_filters)]
LimitQuery = Annotated[int, Query(ge=1, le=500, description="At most this many conversations")]
CursorQuery = Annotated[str | None, Query(max_length=500, description="X-Next-Cursor of the previous page")]


def paged(page: Page, request: Request, response: Response) -> list[dict[str, Any]]:
    """The page's items; its next cursor goes in ``X-Next-Cursor`` and ``Link: <url>; rel="next"``."""
    if page.next_cursor:
        response.headers["X-Next-Cursor"] = page.next_cursor
        response.headers["Link"] = f'<{request.url.include_query_params(cursor=page.next_cursor)}>; rel="next"'
    return page.items


@router.get(_TENANT + "/conversations", response_model=list[ConversationOut])
async def list_tenant_conversations(
    request: Request,
    response: Response,
    scope: TenantScopeDep,
    session: SessionDep,
    filters: ConversationFilterDep,
    company: Annotated[list[str] | None, Query(description="Company slug (repeat for several; default all)")] = None,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> list[dict[str, Any]]:
    """Conversations of all the tenant's companies (or of ``company``), most recently active first.
    A company slug of another tenant is a 404."""
    ids = tuple([(await scope.company(session, slug)).id for slug in company or ()])
    if ids:
        filters = replace(filters, company_ids=ids)
    page = await list_conversations(session, scope=scope, filters=filters, limit=limit, cursor=cursor)
    return paged(page, request, response)


class AssignIn(BaseModel):
    user_id: uuid.UUID | None = Field(default=None, description="The person (the company's manager, an owner "
                                                                "of the tenant or a platform admin); null: nobody")


@router.put(_CONVERSATION + "/assignee", response_model=ConversationDetail)
async def assign_route(
    conversation_id: uuid.UUID, body: AssignIn, company: CompanyDep, session: SessionDep
) -> dict[str, Any]:
    """Assign the conversation to a person (or to nobody) without changing who answers it. 422 for a
    user who is not the company's manager, an owner of the tenant or a platform admin."""
    return await assign(session, company=company, conversation_id=conversation_id, user_id=body.user_id)


@router.post(_CONVERSATION + "/resolve", response_model=ConversationDetail)
async def resolve_route(conversation_id: uuid.UUID, company: CompanyDep, session: SessionDep) -> dict[str, Any]:
    """Close the conversation (``resolved``); the customer's next message starts a new one with the bot."""
    return await resolve(session, company=company, conversation_id=conversation_id)


# -- private notes ---------------------------------------------------------------------------------


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=4000)


class NoteOut(BaseModel):
    id: uuid.UUID
    text: str
    created_at: datetime
    author_user_id: uuid.UUID | None


@router.get(_CONVERSATION + "/notes", response_model=list[NoteOut])
async def list_notes_route(
    conversation_id: uuid.UUID, company: CompanyDep, session: SessionDep
) -> list[dict[str, Any]]:
    """The conversation's private notes, oldest first (never shown to the customer)."""
    return await list_notes(session, company=company, conversation_id=conversation_id)


@router.post(_CONVERSATION + "/notes", status_code=status.HTTP_201_CREATED, response_model=NoteOut)
async def add_note_route(
    conversation_id: uuid.UUID, body: NoteIn, company: CompanyDep, session: SessionDep, access: AccessDep
) -> dict[str, Any]:
    """Add a private note, signed by the caller (no author for an API key or the admin token). 422 for
    a blank text."""
    return await add_note(session, company=company, conversation_id=conversation_id, text=body.text,
                          author_user_id=access.principal.user_id)


@router.delete(_CONVERSATION + "/notes/{note_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_note_route(
    conversation_id: uuid.UUID, note_id: uuid.UUID, company: CompanyDep, session: SessionDep
) -> Response:
    """Delete a private note."""
    await delete_note(session, company=company, conversation_id=conversation_id, note_id=note_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- labels ----------------------------------------------------------------------------------------


class LabelIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    color: str | None = Field(default=None, max_length=32)


class LabelOut(BaseModel):
    id: uuid.UUID
    name: str
    color: str | None


class LabelsIn(BaseModel):
    labels: list[str] = Field(max_length=50, description="Names from the company's label set")


class LabelsOut(BaseModel):
    labels: list[str]


@router.get(_COMPANY + "/labels", response_model=list[LabelOut])
async def list_labels_route(company: CompanyDep, session: SessionDep) -> list[dict[str, Any]]:
    """The company's label set, by name."""
    return await list_labels(session, company=company)


@router.post(_COMPANY + "/labels", status_code=status.HTTP_201_CREATED, response_model=LabelOut)
async def create_label_route(body: LabelIn, company: CompanyDep, session: SessionDep) -> dict[str, Any]:
    """Add a label to the company's set. 422 for a blank or taken name."""
    return await create_label(session, company=company, name=body.name, color=body.color)


@router.delete(_COMPANY + "/labels/{label_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_label_route(label_id: uuid.UUID, company: CompanyDep, session: SessionDep) -> Response:
    """Remove a label from the set and from every conversation."""
    await delete_label(session, company=company, label_id=label_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put(_CONVERSATION + "/labels", response_model=LabelsOut)
async def set_labels_route(
    conversation_id: uuid.UUID, body: LabelsIn, company: CompanyDep, session: SessionDep
) -> dict[str, Any]:
    """Replace the conversation's labels. 422 (nothing changed) for a name not in the company's set."""
    return {"labels": await set_conversation_labels(session, company=company, conversation_id=conversation_id,
                                                    names=body.labels)}


# -- canned replies --------------------------------------------------------------------------------


class CannedIn(BaseModel):
    shortcut: str = Field(min_length=1, max_length=65, description="e.g. 'hours' (used as /hours)")
    text: str = Field(min_length=1, max_length=4000)


class CannedPatch(BaseModel):
    shortcut: str | None = Field(default=None, min_length=1, max_length=65)
    text: str | None = Field(default=None, min_length=1, max_length=4000)


class CannedOut(BaseModel):
    id: uuid.UUID
    shortcut: str
    text: str
    updated_at: datetime


@router.get(_COMPANY + "/canned-replies", response_model=list[CannedOut])
async def list_canned_route(company: CompanyDep, session: SessionDep) -> list[dict[str, Any]]:
    """The company's canned replies, by shortcut."""
    return await list_canned_replies(session, company=company)


@router.post(_COMPANY + "/canned-replies", status_code=status.HTTP_201_CREATED, response_model=CannedOut)
async def create_canned_route(body: CannedIn, company: CompanyDep, session: SessionDep) -> dict[str, Any]:
    """Add a canned reply. 422 for a shortcut with spaces or one already taken."""
    return await create_canned_reply(session, company=company, shortcut=body.shortcut, text=body.text)


@router.patch(_COMPANY + "/canned-replies/{canned_id}", response_model=CannedOut)
async def update_canned_route(
    canned_id: uuid.UUID, body: CannedPatch, company: CompanyDep, session: SessionDep
) -> dict[str, Any]:
    """Change a canned reply's shortcut and/or text."""
    return await update_canned_reply(session, company=company, canned_id=canned_id, shortcut=body.shortcut,
                                     text=body.text)


@router.delete(_COMPANY + "/canned-replies/{canned_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_canned_route(canned_id: uuid.UUID, company: CompanyDep, session: SessionDep) -> Response:
    """Delete a canned reply."""
    await delete_canned_reply(session, company=company, canned_id=canned_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

