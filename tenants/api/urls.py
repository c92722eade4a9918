from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from tenants.api import views

router = SimpleRouter(trailing_slash=False)
router.register("tenants", views.TenantViewSet, basename="tenant")
router.register("sections", views.SectionViewSet, basename="section")
router.register("memberships", views.MembershipViewSet, basename="membership")

urlpatterns = [
    path("auth/token", views.TokenView.as_view(), name="auth-token"),
    path("auth/logout", views.LogoutView.as_view(), name="auth-logout"),
    *router.urls,
]
