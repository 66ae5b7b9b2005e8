"""Placeholder router: filled in by its owner (see /work/shared/server/SPEC.md)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
