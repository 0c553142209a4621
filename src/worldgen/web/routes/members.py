"""Members, roles and invite links of a world (``/api/worlds/{id}/members|invites|access`` and
``/api/invites/...``).

Invariants:

- Every route asks :meth:`~worldgen.web.auth.policy.Guard.require` first, so a private world is a
  404 to non-members here exactly as everywhere else.
- Only owners invite, change roles and remove members; anyone may leave a world (remove
  themselves). The world's creator is always an owner: their role cannot be changed and they
  cannot be removed (409), so a world never loses its last owner.
- An invite token appears once, in the answer that creates it; it travels in the link's
  fragment (``/invite#<token>``), which browsers never send to servers, so it reaches no access
  log, and it is accepted through a POST body.
- A role change or removal is announced on the revocation bus, so the member's open
  connections re-check their access at once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request, Response, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from worldgen.errors import ConflictError, NotFoundError
from worldgen.store.members import (
    INVITE_MAX_USES,
    INVITE_TTL_MAX_S,
    INVITE_TTL_MIN_S,
    Invite,
    Role,
)
from worldgen.web.auth.policy import ACTIONS, Action, Decision
from worldgen.web.auth.services import account_context, authorize_user, current_user
from worldgen.web.deps import (
    CurrentUser,
    OptionalUser,
    SecurityDep,
    TemplatesDep,
    WorldDep,
    WorldsDep,
)
from worldgen.web.params import JSON_INT

__all__ = ["page_router", "router"]

router = APIRouter(tags=["members"])
page_router = APIRouter(include_in_schema=False)

UserId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{16}$", description="A user's id.")]
InviteId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{12}$", description="An invite's id.")]
Token = Annotated[str, StringConstraints(min_length=1, max_length=128)]


def iso(ts: float) -> str:
    """Epoch seconds as ISO 8601 UTC with a ``Z``."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Detail(BaseModel):
    """An error body."""

    detail: str


class MemberOut(BaseModel):
    """One member of a world."""

    user_id: str
    username: str
    role: Role
    joined: str
    creator: bool = Field(description="The world's creator: always an owner.")


class MemberList(BaseModel):
    """``GET /api/worlds/{id}/members``: earliest first."""

    members: list[MemberOut]


class RoleChange(_Strict):
    """``PATCH /api/worlds/{id}/members/{user_id}``."""

    role: Role


class InviteCreate(_Strict):
    """``POST /api/worlds/{id}/invites``: a link that lets signed-in people join as ``role``."""

    role: Literal["editor", "viewer"] = "viewer"
    expires_in: Annotated[int, JSON_INT] = Field(
        default=7 * 86_400,
        ge=INVITE_TTL_MIN_S,
        le=INVITE_TTL_MAX_S,
        description="Seconds until the link stops working (60 s .. 30 days).",
    )
    max_uses: Annotated[int, JSON_INT] = Field(
        default=0, ge=0, le=INVITE_MAX_USES, description="0 = unlimited."
    )


class InviteOut(BaseModel):
    """An invite as listed (the link itself is shown only when created)."""

    id: str
    role: Role
    created: str
    expires: str
    max_uses: int
    uses: int

    @classmethod
    def of(cls, invite: Invite) -> InviteOut:
        return cls(
            id=invite.id,
            role=invite.role,
            created=iso(invite.created),
            expires=iso(invite.expires),
            max_uses=invite.max_uses,
            uses=invite.uses,
        )


class InviteCreated(InviteOut):
    """A new invite, with its secret token and link (shown this once)."""

    token: str
    url: str = Field(description="Relative link to share: /invite#<token>.")


class InviteList(BaseModel):
    """``GET /api/worlds/{id}/invites``: live invites, oldest first."""

    invites: list[InviteOut]


class InviteToken(_Strict):
    """An invite token from a link's fragment."""

    token: Token


class InvitePreview(BaseModel):
    """What an invite link offers."""

    world_id: str
    world_name: str
    role: Role
    expires: str


class Joined(BaseModel):
    """The result of accepting an invite."""

    world_id: str
    role: Role
    changed: bool = Field(
        description="False when the user already had this role or a stronger one."
    )
    page: str


class Access(BaseModel):
    """``GET /api/worlds/{id}/access``: the caller's role and what it allows (for the UI)."""

    role: Role | None
    signed_in: bool
    actions: list[Action]


_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Detail}}
_OWNER_ONLY: dict[int | str, dict[str, Any]] = {
    401: {"model": Detail},
    403: {"model": Detail},
    404: {"model": Detail},
}


@router.get("/api/worlds/{world_id}/access", response_model=Access, responses=_NOT_FOUND)
async def access(world: WorldDep, user: OptionalUser, security: SecurityDep) -> Access:
    """Your role in the world and the actions it allows."""
    guard = security.guard
    await guard.require(user, world, "view")
    allowed = [a for a in ACTIONS if await guard.decision(user, world, a) is Decision.ALLOW]
    return Access(role=await guard.role(user, world), signed_in=user is not None, actions=allowed)


@router.get("/api/worlds/{world_id}/members", response_model=MemberList, responses=_OWNER_ONLY)
async def list_members(world: WorldDep, request: Request, security: SecurityDep) -> MemberList:
    """Who belongs to the world (members only)."""
    await authorize_user(request, world, "members")
    members = await security.members.list_members(world.id)
    if world.owner is not None and all(m.user_id != world.owner for m in members):
        creator = await security.users.get(world.owner)
        if creator is not None:  # a world restored without its member hash
            members.insert(0, await security.members.add(world.id, creator.id, "owner"))
    names = await security.users.usernames(m.user_id for m in members)
    return MemberList(
        members=[
            MemberOut(
                user_id=m.user_id,
                username=names.get(m.user_id, "(deleted)"),
                role="owner" if m.user_id == world.owner else m.role,
                joined=iso(m.joined),
                creator=m.user_id == world.owner,
            )
            for m in members
        ]
    )


@router.patch(
    "/api/worlds/{world_id}/members/{user_id}",
    response_model=MemberOut,
    responses={**_OWNER_ONLY, 409: {"model": Detail}},
)
async def change_role(
    world: WorldDep, user_id: UserId, body: RoleChange, request: Request, security: SecurityDep
) -> MemberOut:
    """Give a member another role (owners only; not the creator's)."""
    await authorize_user(request, world, "manage")
    if user_id == world.owner:
        raise ConflictError("the world's creator is always an owner")
    member = await security.members.set_role(world.id, user_id, body.role)
    if member is None:
        raise NotFoundError("no such member")
    await security.revocations.access_changed(world.id, user_id)
    names = await security.users.usernames([user_id])
    return MemberOut(
        user_id=user_id,
        username=names.get(user_id, "(deleted)"),
        role=member.role,
        joined=iso(member.joined),
        creator=False,
    )


@router.delete(
    "/api/worlds/{world_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**_OWNER_ONLY, 409: {"model": Detail}},
)
async def remove_member(
    world: WorldDep, user_id: UserId, request: Request, security: SecurityDep
) -> Response:
    """Remove a member (owners), or leave the world (anyone, removing themselves)."""
    who = await current_user(request)
    leaving = who is not None and who.id == user_id
    await authorize_user(request, world, "members" if leaving else "manage")
    if user_id == world.owner:
        raise ConflictError("the world's creator cannot be removed")
    if not await security.members.remove(world.id, user_id):
        raise NotFoundError("no such member")
    await security.revocations.access_changed(world.id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/api/worlds/{world_id}/invites",
    status_code=status.HTTP_201_CREATED,
    response_model=InviteCreated,
    responses={**_OWNER_ONLY, 409: {"model": Detail}},
)
async def create_invite(
    world: WorldDep, body: InviteCreate, request: Request, security: SecurityDep
) -> InviteCreated:
    """A new invite link (owners only). The token is shown only in this answer."""
    user = await authorize_user(request, world, "invite")
    invite, token = await security.members.create_invite(
        world.id,
        role=body.role,
        ttl_s=body.expires_in,
        created_by=user.id,
        max_uses=body.max_uses,
    )
    return InviteCreated(
        **InviteOut.of(invite).model_dump(),
        token=token,
        url=f"/invite#{token}",
    )


@router.get("/api/worlds/{world_id}/invites", response_model=InviteList, responses=_OWNER_ONLY)
async def list_invites(world: WorldDep, request: Request, security: SecurityDep) -> InviteList:
    """The world's live invites (owners only)."""
    await authorize_user(request, world, "invite")
    invites = await security.members.invites(world.id)
    return InviteList(invites=[InviteOut.of(i) for i in invites])


@router.delete(
    "/api/worlds/{world_id}/invites/{invite_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_OWNER_ONLY,
)
async def revoke_invite(
    world: WorldDep, invite_id: InviteId, request: Request, security: SecurityDep
) -> Response:
    """Make an invite link stop working (owners only)."""
    await authorize_user(request, world, "invite")
    if not await security.members.revoke_invite(world.id, invite_id):
        raise NotFoundError("no such invite")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/api/invites/preview", response_model=InvitePreview, responses=_NOT_FOUND)
async def preview_invite(
    body: InviteToken, worlds: WorldsDep, security: SecurityDep
) -> InvitePreview:
    """What a link offers (the world's name and the role), for whoever holds the token."""
    found = await security.members.peek_invite(body.token)
    world = await worlds.get(found[0]) if found is not None else None
    if found is None or world is None:
        raise NotFoundError("this invite link is not valid any more")
    return InvitePreview(
        world_id=world.id, world_name=world.name, role=found[1].role, expires=iso(found[1].expires)
    )


@router.post(
    "/api/invites/accept",
    response_model=Joined,
    responses={401: {"model": Detail}, 404: {"model": Detail}, 409: {"model": Detail}},
)
async def accept_invite(
    body: InviteToken, user: CurrentUser, worlds: WorldsDep, security: SecurityDep
) -> Joined:
    """Join the world of the link with its role (signed in; never lowers a role you have)."""
    world_id = body.token.split(".", 1)[0]
    world = await worlds.get(world_id)
    if world is not None and world.owner == user.id:
        return Joined(world_id=world.id, role="owner", changed=False, page=f"/worlds/{world.id}")
    joined = await security.members.redeem(body.token, user.id) if world else None
    if joined is None or world is None:
        raise NotFoundError("this invite link is not valid any more")
    _, member, changed = joined
    if changed:
        await security.revocations.access_changed(world.id, user.id)
    return Joined(world_id=world.id, role=member.role, changed=changed, page=f"/worlds/{world.id}")


@page_router.get("/invite", response_class=HTMLResponse)
async def invite_page(request: Request, templates: TemplatesDep) -> HTMLResponse:
    """The page behind an invite link; the token stays in the fragment (never sent here)."""
    context = await account_context(request)
    return templates.TemplateResponse(
        request, "invite.html", context, headers={"Cache-Control": "no-store"}
    )
