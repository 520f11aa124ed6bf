"""The broker ACL, generated from the protocol's topic table (`protocol.topics`).

Who may publish or read what is written once, in `TOPICS` and `COMMAND_ROLES`; this module
turns it into Mosquitto rules:

- Rules every role has on its *own* id (its presence, its replies) become `pattern` lines
  with `%u`: one line covers every device, because device id = broker username.
- Mosquitto applies `pattern` lines to every user, so rules that differ by role (which
  command kinds, which state) go into one `user` block per device, listing its role's rules
  with its id filled in. The broker learns a device's role from the inventory this way.

A row marked `own_only` binds the `{device}` level to the device itself, except for the
party that is alone on its side of the row: the hub, sole reader of commands and presence,
reads every device's; as sole writer of replies it answers every device.

    print(render_acl("mpp-banjarbaru", {"hub": "hub", "caller-03": "caller"}))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from protocol.errors import MppError
from protocol.site import ROLES
from protocol.topics import COMMAND_ROLES, ROOT, TOPICS, TopicSpec

HUB = "hub"
WEB = "web"  # the site web process: staff commands, its own presence, reads state and presence
MONITOR = "monitor"  # the technician's `mpp-provision fleet`: reads presence and state only
# The uplink broker's bridge into the site broker: it carries the region's side of the topic
# table (reads what the region reads, up/; writes what the region writes, down/).
UPLINK = "uplink"
REGION = "region"  # the party of the topic table the uplink stands for at the site
RESERVED_USERS = (HUB, WEB, MONITOR, UPLINK)
SELF = "%u"  # placeholder for the client's own id inside generated rules
ALL_ROLES: tuple[str, ...] = (*ROLES, WEB, MONITOR, UPLINK)


class AclError(MppError, ValueError):
    """The ACL cannot be generated (unknown role, reserved name used by a device...)."""


@dataclass(frozen=True, order=True)
class Rule:
    """One ACL grant: `read` or `write` on a topic filter; `%u` stands for the client's id."""

    access: str
    topic: str

    @property
    def own(self) -> bool:
        """True when the rule is bound to the client's own id."""
        return SELF in self.topic.split("/")

    def for_user(self, username: str) -> Rule:
        """The rule with the client's id filled in (for a `user` block)."""
        levels = [username if level == SELF else level for level in self.topic.split("/")]
        return Rule(self.access, "/".join(levels))


def _levels(spec: TopicSpec, role: str, writing: bool) -> list[list[str]]:
    """Topic levels (one list per command kind) that `role` may write (or read) on a row."""
    alone = (not writing and role in spec.reads_every_device) or (
        spec.publishers if writing else spec.subscribers
    ) == (role,)
    levels: list[str] = []
    kinds: list[str] = ["+"]
    for level in spec.template.split("/"):
        if level == "{device}":
            levels.append("+" if alone or not spec.own_only else SELF)
        elif level == "{kind}":
            levels.append("{kind}")
            if writing:
                kinds = [kind for kind, roles in COMMAND_ROLES.items() if role in roles]
        elif level.startswith("{"):
            levels.append("+")
        else:
            levels.append(level)
    return [[kind if level == "{kind}" else level for level in levels] for kind in kinds]


def role_rules(site_id: str, role: str) -> tuple[Rule, ...]:
    """Every grant of `role` on site `site_id`, derived from the topic table."""
    if role not in ALL_ROLES:
        raise AclError(f"unknown role {role!r}; roles are {', '.join(ALL_ROLES)}")
    prefix = f"{ROOT}/{site_id}/"
    rules: set[Rule] = set()
    for spec in TOPICS:
        if role == UPLINK:
            if REGION in spec.publishers:
                rules.add(Rule("write", prefix + spec.template.format_map(_AnyLevel())))
            if REGION in spec.subscribers:
                rules.add(Rule("read", prefix + spec.template.format_map(_AnyLevel())))
            continue
        if role == MONITOR:
            if spec.retained:  # presence, state and alerts; never commands or replies
                rules.add(Rule("read", prefix + spec.template.format_map(_AnyLevel())))
            continue
        if role in spec.publishers:
            for levels in _levels(spec, role, writing=True):
                rules.add(Rule("write", prefix + "/".join(levels)))
        if role in spec.subscribers:
            for levels in _levels(spec, role, writing=False):
                rules.add(Rule("read", prefix + "/".join(levels)))
    return tuple(sorted(rules))


class _AnyLevel(dict):
    def __missing__(self, key: str) -> str:
        return "+"


def shared_patterns(site_id: str) -> tuple[Rule, ...]:
    """Own-id rules every protocol role has: written once as `pattern` lines."""
    common = set.intersection(*(set(role_rules(site_id, role)) for role in ROLES))
    return tuple(sorted(rule for rule in common if rule.own))


def user_rules(site_id: str, username: str, role: str) -> tuple[Rule, ...]:
    """The `topic` lines of one user's block: its role's rules not covered by a pattern."""
    shared = set(shared_patterns(site_id))
    return tuple(
        sorted(rule.for_user(username) for rule in role_rules(site_id, role) if rule not in shared)
    )


def render_acl(site_id: str, users: Mapping[str, str]) -> str:
    """The ACL file for `{username: role}`; the same users always give the same text."""
    for username, role in users.items():
        if role not in ALL_ROLES:
            raise AclError(f"{username}: unknown role {role!r}; roles are {', '.join(ALL_ROLES)}")
        if username in RESERVED_USERS and role != username:
            raise AclError(
                f"{username!r} is reserved for the {username} account; rename the device"
            )
    out = [
        f"# Mosquitto ACL of MPP site {site_id}. Generated by `mpp-provision broker` from",
        "# protocol/topics.py (TOPICS, COMMAND_ROLES): do not edit; regenerate instead.",
        "# No rule precedes the first `user` line, so anonymous clients get nothing.",
        "",
        "# Every client, on its own id only (%u = broker username = client id = device id):",
    ]
    out += [f"pattern {rule.access} {rule.topic}" for rule in shared_patterns(site_id)]
    order = {
        role: i for i, role in enumerate((HUB, WEB, MONITOR, UPLINK, "kiosk", "caller", "display"))
    }
    for username in sorted(users, key=lambda name: (order[users[name]], name)):
        role = users[username]
        out += ["", f"# {role}", f"user {username}"]
        out += [f"topic {rule.access} {rule.topic}" for rule in user_rules(site_id, username, role)]
    return "\n".join(out) + "\n"
