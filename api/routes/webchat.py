"""The public web chat: the JSON API the chat page talks to and the page itself (``/chat/{company}``).

A company is addressed by its global slug. The server issues each visitor's identity
(``api.visitors``): browsers keep it in an HttpOnly cookie, other clients get ``visitor_token`` once
and send it back in a header. Nothing the client sends in the body or query selects a visitor.
Messages go through ``channels.webchat.WebChatChannel`` and the inbound ``Pipeline`` like any other
channel's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import HTMLResponse

from api.deps import PublicCompanyDep, RuntimeDep, SessionDep, TemplatesDep
from api.pages import page_language
from api.queries import conversation_messages, conversations_of_contact
from api.ratelimit import WEBCHAT_RATE_LIMIT
from api.schemas import WebChatIn, WebChatMessage, WebChatOut, WebChatPoll
from api.visitor_tokens import new_visitor_id
from api.visitors import IdentityDep, set_visitor_cookie
from channels.base import RawRequest, SignatureError
from channels.webchat import VISITOR_KEY
from core.accounts import inbox_of_kind
from core.i18n import LANGUAGES, t
from core.tenancy import NotFound, TenantScope, company_by_slug

router = APIRouter(tags=["webchat"], dependencies=[WEBCHAT_RATE_LIMIT])

MAX_POLL = 200
_VISITOR_HEADERS = (
    "Send the visitor token back as `Authorization: Bearer <token>` or `X-Visitor-Token: <token>`; "
    "browsers send the HttpOnly `cc_visitor` cookie instead."
)


@router.post(
    "/api/v1/webchat/{company}/messages",
    response_model=WebChatOut,
    description=_VISITOR_HEADERS,
    openapi_extra={"requestBody": {"required": True,
                                   "content": {"application/json": {"schema": WebChatIn.model_json_schema()}}}},
)
async def post_message(request: Request, response: Response, company: PublicCompanyDep, session: SessionDep,
                       runtime: RuntimeDep, identity: IdentityDep) -> WebChatOut:
    """A visitor's message: ``{"text", "message_id"?, "name"?}``. The bot's replies come back in
    ``replies``; a ``message_id`` this visitor already sent is answered with ``duplicate: true`` and
    does nothing. A request without a valid visitor identity starts a new visitor: the answer sets
    the ``cc_visitor`` cookie and carries ``visitor_token`` (only then). 422 for a malformed body
    (nothing stored, no visitor started), 404 for an unknown company."""
    try:
        inbox = await inbox_of_kind(session, company, "webchat")
    except LookupError as exc:
        raise NotFound(str(exc)) from exc
    await session.commit()  # ends the read-only transaction; the pipeline writes in its own sessions
    visitor = identity.visitor_id or new_visitor_id()
    channel = runtime.channel_factory.build(inbox)
    raw = RawRequest(headers={k.lower(): v for k, v in request.headers.items()}, body=await request.body(),
                     query={VISITOR_KEY: visitor})
    try:
        await channel.verify(raw)
        parsed = channel.parse(raw)
    except SignatureError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    finally:
        await channel.aclose()
    results = []
    for item in parsed:
        try:
            results.append(await runtime.pipeline.receive(inbox_id=inbox.id, parsed=item))
        except LookupError as exc:
            raise NotFound(str(exc)) from exc
    token = runtime.visitor_signer.sign(company_id=company.id, visitor_id=visitor)
    if not identity.from_header:  # a browser: (re)sign its cookie, so an active visitor stays known
        set_visitor_cookie(response, token=token, company=company, public_base_url=runtime.settings.public_base_url,
                           max_age_seconds=runtime.visitor_signer.max_age_seconds)
    response.headers["Cache-Control"] = "no-store"
    conversation_id = next((r.conversation_id for r in results if r.conversation_id), None)
    return WebChatOut(
        conversation_id=conversation_id,
        replies=[reply.as_dict() for r in results for reply in r.replies],
        duplicate=bool(results) and all(r.duplicate for r in results),
        handoff=any(r.handoff for r in results),
        visitor_token=token if identity.visitor_id is None else None,
    )


@router.get("/api/v1/webchat/{company}/messages", response_model=WebChatPoll, description=_VISITOR_HEADERS)
async def poll_messages(
    response: Response,
    company: PublicCompanyDep,
    session: SessionDep,
    identity: IdentityDep,
    after: Annotated[int, Query(ge=0, description="Return messages with seq greater than this")] = 0,
) -> WebChatPoll:
    """The visitor's current conversation's messages after ``after`` (both directions, in order), so
    the page shows what arrives later: a manager's reply, the payment confirmation. Without a valid
    visitor identity: ``{"conversation_id": null, "messages": []}`` (no visitor is started)."""
    response.headers["Cache-Control"] = "no-store"
    if identity.visitor_id is None:
        return WebChatPoll(conversation_id=None, messages=[])
    conversations = await conversations_of_contact(session, company=company, source_id=identity.visitor_id,
                                                   inbox_kinds=("webchat",))
    if not conversations:
        return WebChatPoll(conversation_id=None, messages=[])
    conversation = conversations[-1]
    rows = await conversation_messages(session, scope=TenantScope(company.tenant_id),
                                       conversation_id=conversation.id, after_seq=after)
    messages = [
        WebChatMessage(
            seq=m.seq, direction=m.direction, sender=m.sender, text=m.text,
            buttons=list((m.payload or {}).get("buttons") or []) if m.direction == "out" else [],
            url=(m.payload or {}).get("url") if m.direction == "out" else None,
            image_url=(m.payload or {}).get("image_url") if m.direction == "out" else None,
            created_at=m.created_at,
        )
        for m in rows[:MAX_POLL]
    ]
    language = page_language(conversation_language=conversation.language, company_language=None) \
        if conversation.language else None
    return WebChatPoll(conversation_id=conversation.id, messages=messages, language=language)


@router.get("/chat/{company}", response_class=HTMLResponse, include_in_schema=False)
async def chat_page(company: str, request: Request, session: SessionDep, templates: TemplatesDep) -> HTMLResponse:
    """The chat page of a company: self-contained HTML and vanilla JS (no external assets)."""
    try:
        row = await company_by_slug(session, company)
    except NotFound:
        return templates.TemplateResponse(request, "not_found.html", {"what": "chat", "lang": "en"},
                                          status_code=status.HTTP_404_NOT_FOUND)
    lang = page_language(conversation_language=None, company_language=row.language)
    return templates.TemplateResponse(
        request, "chat.html",
        {"company": row, "lang": lang,
         "config": {"company": row.slug, "name": row.name, "endpoint": f"/api/v1/webchat/{row.slug}/messages",
                    "lang": lang, "texts": {language: _chat_texts(language) for language in LANGUAGES}}},
    )


def _chat_texts(language: str) -> dict[str, str]:
    """The chat page's own texts in ``language`` (the script switches to the conversation's language
    when a poll tells it; the server cannot see the visitor's cookie on the page's path)."""
    keys = ("title", "placeholder", "send", "manager", "error", "hello")
    return {key: t(f"chat:{key}", language, company="{company}") for key in keys}
