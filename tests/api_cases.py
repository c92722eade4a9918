"""One declarative base for the API tests, in the style of NetBox's ``APIViewTestCases``.

Every endpoint must answer 401 without credentials, show another tenant nothing, refuse writes
below the role they need and reject a table of bad inputs, each time leaving the database as it
was (STYLE.md, "Tests"). A resource's test module gets all of that by filling in a class::

    class TestTagsAPI(ResourceAPICases):
        path = "/tags"                      # under every prefix of ``prefixes``
        items_key = "tags"                  # the list of the paginated answer
        model = Tag
        write_role = "operator"             # or {"create": "superuser", "update": "admin", ...}
        bad_bodies = [("empty-name", {"name": ""}, "name")]   # changes to ``create_body``
        bad_changes = [("bad-scope", {"scope": "x"}, "scope")]  # PATCH bodies for ``object_a``

        @pytest.fixture
        def object_a(self, section_a): ...  # an object of tenant A
        @pytest.fixture
        def object_b(self, section_b): ...  # the only object of its kind in tenant B
        @pytest.fixture
        def create_body(self, section_a): ...  # a valid POST body into tenant A
        @pytest.fixture
        def update_body(self): ...          # a valid PATCH body

The users are those of ``tests/conftest.py``: ``vera`` (viewer of A), ``oscar`` (operator of A),
``alice`` (admin of A), ``bob`` (admin of B) and ``superuser``. A resource that does less declares
``operations`` (agents have no create) and its detail ``actions`` (``revoke``); the cases of what
it does not do are left out of it, and the verbs it lacks must answer 405.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import pytest
from django.db import models
from rest_framework.test import APIClient

OPERATIONS = ("list", "retrieve", "create", "update", "delete")
WRITES = ("create", "update", "delete")
ROLES = ("viewer", "operator", "admin", "superuser")
USER_OF_ROLE = {"viewer": "vera", "operator": "oscar", "admin": "alice", "superuser": "superuser"}
SUCCESS_STATUS = {"create": 201, "update": 200, "delete": 204}
BAD_TOKEN = "Bearer not-a-jwt"


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()
"""In a bad input: leave this key out of the valid body."""

BadInput = tuple[str, dict, str]
"""``(name, change, field)``: the change makes the body a 400 ``validation_error`` naming ``field``."""

BAD_PAGES: list[BadInput] = [
    ("page-zero", {"page": 0}, "page"),
    ("page-negative", {"page": -1}, "page"),
    ("page-not-a-number", {"page": "abc"}, "page"),
    ("page-absurd", {"page": "99999999999999999999"}, "page"),
    ("page-size-zero", {"page_size": 0}, "page_size"),
    ("page-size-over-100", {"page_size": 101}, "page_size"),
    ("page-size-not-a-number", {"page_size": "ten"}, "page_size"),
]
UNKNOWN_IDS = [
    pytest.param("not-a-uuid", id="not-a-uuid"),
    pytest.param("00000000-0000-0000-0000-000000000000", id="unknown-uuid"),
]


@dataclass(frozen=True)
class Call:
    """One request, built (with the fixtures it needs) before the database is snapshotted."""

    method: str
    url: str
    body: dict | None = None

    def send(self, client: APIClient):
        if self.body is None:
            return getattr(client, self.method)(self.url)
        return getattr(client, self.method)(self.url, self.body, format="json")


def parametrized(argnames: str, source: Callable[[type], list]):
    """Parametrize a base case per resource with ``source(resource_class)``; a case whose list is
    empty for a resource (no bad updates declared, no create) is left out of that resource."""

    def mark(test):
        test.cases = (argnames, source)
        return test

    return mark


def needs(*operations: str):
    """Leave the case out of resources that do not support all of ``operations``."""

    def mark(test):
        test.needs = operations
        return test

    return mark


def _table(rows: Sequence[BadInput]) -> list:
    return [pytest.param(change, field, id=name) for name, change, field in rows]


def _changed(body: dict, change: dict, placeholders: Mapping) -> dict:
    """``body`` with ``change`` applied: string values naming a placeholder are replaced by it,
    ``MISSING`` removes the key."""
    resolved = {
        key: placeholders.get(value, value) if isinstance(value, str) else value for key, value in change.items()
    }
    return {key: value for key, value in {**body, **resolved}.items() if value is not MISSING}


def _prefix_label(prefix: str) -> str:
    return prefix.strip("/").replace("/", "-") or "root"


class ResourceAPICases:
    """The cases every API resource must pass; ``Test*`` subclasses declare the resource.

    See the module docstring for what a subclass declares. Only ``Test*`` subclasses are
    collected, so this class runs nothing itself."""

    pytestmark: ClassVar[list] = [pytest.mark.django_db]

    path: ClassVar[str]
    items_key: ClassVar[str]
    model: ClassVar[type[models.Model]]
    prefixes: ClassVar[tuple[str, ...]] = ("/api/v1", "/v1", "")
    operations: ClassVar[Sequence[str]] = OPERATIONS
    actions: ClassVar[Sequence[str]] = ()
    write_role: ClassVar[str | Mapping[str, str]] = "operator"
    # What bob (admin of tenant B) gets for ``create_body``, which aims at tenant A.
    create_in_other_tenant: ClassVar[tuple[int, str, str | None]] = (400, "validation_error", "section_id")
    bad_bodies: ClassVar[Sequence[BadInput]] = ()
    bad_changes: ClassVar[Sequence[BadInput]] = ()
    url: ClassVar[str]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        missing = [name for name in ("path", "items_key", "model") if not hasattr(cls, name)]
        unknown = set(cls.operations) - set(OPERATIONS)
        if missing or unknown:
            raise TypeError(f"{cls.__name__}: declare {missing}; unknown operations {sorted(unknown)}")
        cls.url = cls.prefixes[0] + cls.path
        for name, test in vars(ResourceAPICases).items():
            if name.startswith("test_") and name not in cls.__dict__ and not cls._applies(test):
                setattr(cls, name, None)  # pytest collects functions only: not a case of this resource

    @classmethod
    def _applies(cls, test) -> bool:
        if not set(getattr(test, "needs", ())) <= set(cls.operations):
            return False
        _argnames, source = getattr(test, "cases", (None, None))
        return source is None or bool(source(cls))

    def pytest_generate_tests(self, metafunc):
        argnames, source = getattr(metafunc.function, "cases", (None, None))
        if argnames:
            metafunc.parametrize(argnames, source(type(self)))

    # -----------------------------------------------------------------------------------------
    # What the resource supports, and who may do it

    @classmethod
    def supported(cls, *among: str, actions: bool = False) -> list[str]:
        """The operations of ``among`` the resource supports, then its actions if asked."""
        return [op for op in among if op in cls.operations] + (list(cls.actions) if actions else [])

    @classmethod
    def role_for(cls, operation: str) -> str:
        """The least role that may do ``operation`` (an action needs the role of ``update``)."""
        if isinstance(cls.write_role, str):
            return cls.write_role
        return cls.write_role[operation if operation in WRITES else "update"]

    def client_of(self, request, role: str) -> APIClient:
        user = request.getfixturevalue(USER_OF_ROLE[role])
        return request.getfixturevalue("client_for")(user)

    def call(self, request, operation: str, prefix: str | None = None) -> Call:
        """The request of ``operation`` on tenant A's data, under ``prefix`` (the first by default)."""
        url = (self.prefixes[0] if prefix is None else prefix) + self.path
        if operation == "list":
            return Call("get", url)
        if operation == "create":
            return Call("post", url, request.getfixturevalue("create_body"))
        detail = f"{url}/{request.getfixturevalue('object_a').pk}"
        if operation == "retrieve":
            return Call("get", detail)
        if operation == "update":
            return Call("patch", detail, request.getfixturevalue("update_body"))
        if operation == "delete":
            return Call("delete", detail)
        return Call("post", f"{detail}/{operation}")  # one of ``actions``

    @pytest.fixture
    def placeholders(self) -> dict:
        """Values a bad input names by a string (``"OTHER_TENANT_TAGS"``), made for each case."""
        return {}

    # -----------------------------------------------------------------------------------------
    # Parameters

    @classmethod
    def _unauthenticated(cls) -> list:
        ops = cls.supported(*OPERATIONS, actions=True)
        without = [
            pytest.param(op, prefix, None, id=f"{op}-{_prefix_label(prefix)}") for prefix in cls.prefixes for op in ops
        ]
        return without + [pytest.param(op, cls.prefixes[0], BAD_TOKEN, id=f"{op}-bad-token") for op in ops]

    @classmethod
    def _below_write_role(cls) -> list:
        return [
            pytest.param(op, role, id=f"{op}-by-{role}")
            for op in cls.supported(*WRITES, actions=True)
            for role in ROLES[: ROLES.index(cls.role_for(op))]
        ]

    @classmethod
    def _missing_verbs(cls) -> list:
        lacking = [("patch", "update", "detail"), ("delete", "delete", "detail"), ("post", "create", "list")]
        verbs = [("put", "detail")] + [(verb, target) for verb, op, target in lacking if op not in cls.operations]
        return [pytest.param(verb, target, id=verb) for verb, target in verbs]

    # -----------------------------------------------------------------------------------------
    # The cases

    @parametrized("operation,prefix,authorization", lambda cls: cls._unauthenticated())
    def test_it_answers_401_without_credentials(
        self, request, db_state, assert_error, operation, prefix, authorization
    ):
        call = self.call(request, operation, prefix)
        client = APIClient()
        if authorization:
            client.credentials(HTTP_AUTHORIZATION=authorization)
        before = db_state()
        response = call.send(client)
        assert_error(response, 401, "unauthorized")
        assert response["WWW-Authenticate"] == "Bearer"
        assert db_state() == before

    @needs("list")
    def test_another_tenant_lists_only_its_own(self, client_for, bob, object_a, object_b, db_state):
        client = client_for(bob)
        before = db_state()
        response = client.get(self.url)
        assert response.status_code == 200, response.content
        assert [item["id"] for item in response.json()[self.items_key]] == [str(object_b.pk)]
        assert db_state() == before

    @parametrized("operation", lambda cls: cls.supported("retrieve", "update", "delete", actions=True))
    def test_another_tenant_cannot_reach_an_object(self, request, client_for, bob, db_state, assert_error, operation):
        call = self.call(request, operation)
        client = client_for(bob)
        before = db_state()
        assert_error(call.send(client), 404, "not_found")
        assert db_state() == before

    @needs("create")
    def test_it_refuses_creating_into_another_tenant(self, client_for, bob, create_body, db_state, assert_error):
        status, code, field = self.create_in_other_tenant
        client = client_for(bob)
        before = db_state()
        assert_error(client.post(self.url, create_body, format="json"), status, code, field=field)
        assert db_state() == before

    @parametrized("operation,role", lambda cls: cls._below_write_role())
    def test_it_refuses_writes_below_the_write_role(self, request, db_state, assert_error, operation, role):
        call = self.call(request, operation)
        client = self.client_of(request, role)
        before = db_state()
        assert_error(call.send(client), 403, "forbidden")
        assert db_state() == before

    @parametrized("operation", lambda cls: cls.supported(*WRITES))
    def test_the_write_role_may_write(self, request, operation):
        """The declared bodies are valid, so the refusals above are about the user alone."""
        call = self.call(request, operation)
        response = call.send(self.client_of(request, self.role_for(operation)))
        assert response.status_code == SUCCESS_STATUS[operation], response.content
        pk = response.json()["id"] if operation == "create" else request.getfixturevalue("object_a").pk
        assert self.model.objects.filter(pk=pk).exists() == (operation != "delete")

    @parametrized("change,field", lambda cls: _table(cls.bad_bodies) if "create" in cls.operations else [])
    def test_it_rejects_bad_bodies(self, request, create_body, placeholders, db_state, assert_error, change, field):
        body = _changed(create_body, change, placeholders)
        client = self.client_of(request, self.role_for("create"))
        before = db_state()
        assert_error(client.post(self.url, body, format="json"), 400, "validation_error", field=field)
        assert db_state() == before

    @parametrized("change,field", lambda cls: _table(cls.bad_changes) if "update" in cls.operations else [])
    def test_it_rejects_bad_changes(self, request, object_a, placeholders, db_state, assert_error, change, field):
        body = _changed({}, change, placeholders)
        client = self.client_of(request, self.role_for("update"))
        before = db_state()
        response = client.patch(f"{self.url}/{object_a.pk}", body, format="json")
        assert_error(response, 400, "validation_error", field=field)
        assert db_state() == before

    @parametrized("query,field", lambda cls: _table(BAD_PAGES) if "list" in cls.operations else [])
    def test_it_rejects_bad_pagination(self, client_for, vera, assert_error, query, field):
        assert_error(client_for(vera).get(self.url, query), 400, "validation_error", field=field)

    @parametrized("pk", lambda cls: UNKNOWN_IDS if "retrieve" in cls.operations else [])
    def test_it_answers_404_for_an_unknown_id(self, client_for, superuser, assert_error, pk):
        assert_error(client_for(superuser).get(f"{self.url}/{pk}"), 404, "not_found")

    @parametrized("method,target", lambda cls: cls._missing_verbs())
    def test_it_allows_only_the_intended_verbs(self, request, object_a, db_state, assert_error, method, target):
        url = self.url if target == "list" else f"{self.url}/{object_a.pk}"
        body = request.getfixturevalue("update_body") if "update" in self.operations else {}
        client = self.client_of(request, self.role_for("update") if "update" in self.operations else "superuser")
        before = db_state()
        assert_error(Call(method, url, body).send(client), 405, "method_not_allowed")
        assert db_state() == before
