"""Tenancy API: bearer tokens, tenants, sections, memberships."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from smotra.api.mixins import crud_schema
from smotra.api.pagination import keyed
from smotra.errors import RateLimited
from tenants import services
from tenants.api import serializers as s
from tenants.api.mixins import TenantScopedCrudViewSet
from tenants.authentication import BearerTokenAuthentication
from tenants.models import Membership, Section, Tenant
from tenants.tokens import token_issue, token_revoke


class TokenView(APIView):
    """Exchange a username and password for a bearer token (signed with auth.jwt_secret).

    Throttled by django-axes (settings AXES_*): too many failures for the username or from the
    client address answer 429, even with the right password, until the cool-off has passed.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(request=s.TokenRequestSerializer, responses=s.TokenSerializer, tags=["auth"], auth=[])
    def post(self, request):
        data = s.TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # The DRF request, not request._request: axes flags the lockout on the object it is given,
        # so its middleware never swaps this JSON answer for its own page.
        user = authenticate(request, **data.validated_data)
        if getattr(request, "axes_locked_out", False):
            retry_after = int(settings.AXES_COOLOFF_TIME.total_seconds())
            raise RateLimited("Too many failed logins; try again later.", retry_after=retry_after)
        if user is None:
            raise AuthenticationFailed("Invalid username or password.")
        token, expires_at = token_issue(user=user)
        return Response({"access_token": token, "token_type": "Bearer", "expires_at": expires_at})

    def get_authenticate_header(self, request):
        return "Bearer"


class LogoutView(APIView):
    """End the bearer token this request carries: it is refused from now on (other tokens of the
    same user stay valid). Only a bearer token can be logged out, so a session is a 401 here."""

    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None}, tags=["auth"], summary="Revoke this bearer token")
    def post(self, request):
        token_revoke(claims=request.auth)
        return Response(status=204)


@crud_schema(s.TenantSerializer, s.TenantSerializer, s.TenantSerializer, "tenants")
class TenantViewSet(TenantScopedCrudViewSet):
    queryset = Tenant.objects.all()
    serializer_class = s.TenantSerializer
    pagination_class = keyed("tenants")

    def create_object(self, **data):
        return services.tenant_create(actor=self.actor, **data)

    def update_object(self, tenant, **data):
        return services.tenant_update(actor=self.actor, tenant=tenant, **data)

    def delete_object(self, tenant):
        services.tenant_delete(actor=self.actor, tenant=tenant)


@crud_schema(s.SectionSerializer, s.SectionCreateSerializer, s.SectionUpdateSerializer, "sections")
class SectionViewSet(TenantScopedCrudViewSet):
    queryset = Section.objects.select_related("tenant")
    serializer_class = s.SectionSerializer
    create_serializer_class = s.SectionCreateSerializer
    update_serializer_class = s.SectionUpdateSerializer
    pagination_class = keyed("sections")

    def create_object(self, **data):
        return services.section_create(actor=self.actor, **data)

    def update_object(self, section, **data):
        return services.section_update(actor=self.actor, section=section, **data)

    def delete_object(self, section):
        services.section_delete(actor=self.actor, section=section)


@crud_schema(s.MembershipSerializer, s.MembershipCreateSerializer, s.MembershipUpdateSerializer, "memberships")
class MembershipViewSet(TenantScopedCrudViewSet):
    queryset = Membership.objects.select_related("tenant", "user")
    serializer_class = s.MembershipSerializer
    create_serializer_class = s.MembershipCreateSerializer
    update_serializer_class = s.MembershipUpdateSerializer
    pagination_class = keyed("memberships")

    def create_object(self, **data):
        return services.membership_create(actor=self.actor, **data)

    def update_object(self, membership, **data):
        return services.membership_update(actor=self.actor, membership=membership, **data)

    def delete_object(self, membership):
        services.membership_delete(actor=self.actor, membership=membership)
