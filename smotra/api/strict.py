"""Request-body fields that take JSON types at their word: drop-in replacements for DRF's.

DRF coerces: a CharField takes ``123`` as ``"123"``, a UUIDField takes an integer as ``UUID(int=...)``
(so a 64-digit number passed as a claim token hash or an id), an IntegerField takes ``"7"`` and a
BooleanField takes ``"yes"``. A client that sends the wrong type has a bug we should name, not guess
around: here a string field takes only strings, a number only numbers (never a boolean), a boolean
only ``true``/``false``, an id only a string. Use these for input serializers; output serializers
may keep DRF's own fields."""

from __future__ import annotations

from django.db import models
from rest_framework import serializers

NOT_A_STRING = "Must be a string."


class _StringOnly:
    """Refuse anything but a JSON string before DRF would turn it into one."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError(NOT_A_STRING, code="invalid")
        return super().to_internal_value(data)


class CharField(_StringOnly, serializers.CharField):
    pass


class RegexField(_StringOnly, serializers.RegexField):
    pass


class IPAddressField(_StringOnly, serializers.IPAddressField):
    pass


class UUIDField(_StringOnly, serializers.UUIDField):
    pass


class ChoiceField(_StringOnly, serializers.ChoiceField):
    pass


class DateTimeField(_StringOnly, serializers.DateTimeField):
    pass


class IntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            raise serializers.ValidationError("Must be an integer.", code="invalid")
        return super().to_internal_value(data)


class FloatField(serializers.FloatField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            raise serializers.ValidationError("Must be a number.", code="invalid")
        return super().to_internal_value(data)


class BooleanField(serializers.BooleanField):
    def to_internal_value(self, data):
        if not isinstance(data, bool):
            raise serializers.ValidationError("Must be true or false.", code="invalid")
        return data


class ModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer whose generated fields are the strict ones above."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: CharField,
        models.TextField: CharField,
        models.SlugField: CharField,
        models.UUIDField: UUIDField,
        models.GenericIPAddressField: IPAddressField,
        models.BooleanField: BooleanField,
        models.IntegerField: IntegerField,
        models.PositiveIntegerField: IntegerField,
        models.PositiveSmallIntegerField: IntegerField,
        models.PositiveBigIntegerField: IntegerField,
        models.SmallIntegerField: IntegerField,
        models.BigIntegerField: IntegerField,
        models.FloatField: FloatField,
        models.DateTimeField: DateTimeField,
    }
    serializer_choice_field = ChoiceField
