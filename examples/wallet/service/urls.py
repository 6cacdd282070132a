"""The wallet's routes (``views.py`` documents them)."""

from __future__ import annotations

from django.urls import path

from . import views

__all__ = ["handler404", "handler500", "urlpatterns"]

urlpatterns = [
    path("v1/payments", views.payment_create),
    path("v1/payments/<uuid:payment_id>", views.payment_detail),
    path("v1/wallets/<uuid:wallet_id>", views.wallet_detail),
    path("v1/wallets/<uuid:wallet_id>/statement", views.wallet_statement),
    path("healthz", views.health),
    path("readyz", views.ready),
]

handler404 = "wallet.service.views.handler404"
handler500 = "wallet.service.views.handler500"
