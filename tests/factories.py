"""factory_boy factories for the domain models. Every user's password is ``PASSWORD``."""

from __future__ import annotations

import uuid
from functools import lru_cache

import factory
from django.contrib.auth.hashers import make_password
from factory.django import DjangoModelFactory

from agents.models import Agent
from endpoints.models import Endpoint, MemberRole, Tag, TagScope, Topology, TopologyMember, TopologyType
from tenants.models import Membership, Role, Section, Tenant, User

PASSWORD = "pw"


@lru_cache(maxsize=1)
def password_hash() -> str:
    """The Argon2 hash of ``PASSWORD``, computed once: hashing per user would make every test slow."""
    return make_password(PASSWORD)


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    # What set_password("pw") would store, without paying for Argon2 on every user.
    password = factory.LazyFunction(password_hash)
    is_active = True


class SuperuserFactory(UserFactory):
    is_staff = True
    is_superuser = True


class TenantFactory(DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"tenant-{n}")


class SectionFactory(DjangoModelFactory):
    class Meta:
        model = Section

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"section-{n}")


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    tenant = factory.SubFactory(TenantFactory)
    role = Role.VIEWER


class TagFactory(DjangoModelFactory):
    class Meta:
        model = Tag

    section = factory.SubFactory(SectionFactory)
    name = factory.Sequence(lambda n: f"tag-{n}")
    scope = TagScope.GLOBAL


class EndpointFactory(DjangoModelFactory):
    class Meta:
        model = Endpoint
        skip_postgeneration_save = True

    section = factory.SubFactory(SectionFactory)
    address = factory.Sequence(lambda n: f"host{n}.example.net")
    port = None
    enabled = True

    @factory.post_generation
    def tags(self, create, extracted, **kwargs):
        if create and extracted:
            self.tags.set(extracted)


class TopologyFactory(DjangoModelFactory):
    class Meta:
        model = Topology

    section = factory.SubFactory(SectionFactory)
    name = factory.Sequence(lambda n: f"topology-{n}")
    type = TopologyType.FULL_MESH
    enabled = True


class TopologyMemberFactory(DjangoModelFactory):
    class Meta:
        model = TopologyMember

    topology = factory.SubFactory(TopologyFactory)
    tag = factory.SubFactory(TagFactory, section=factory.SelfAttribute("..topology.section"))
    role = MemberRole.MONITOR


class AgentFactory(DjangoModelFactory):
    class Meta:
        model = Agent
        skip_postgeneration_save = True

    id = factory.LazyFunction(uuid.uuid4)
    section = factory.SubFactory(SectionFactory)
    name = factory.Sequence(lambda n: f"agent-{n}")
    hostname = factory.LazyAttribute(lambda agent: f"{agent.name}.local")
    agent_version = "1.4.0"
    ip_addresses = factory.LazyFunction(lambda: ["192.0.2.10"])
    api_key_hash = None

    @factory.post_generation
    def tags(self, create, extracted, **kwargs):
        if create and extracted:
            self.tags.set(extracted)
