import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from kobatela.accounts.models import ApiKey
from tests.conftest import assert_error
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def user_url(user):
    return f"/api/v1/users/{user.pk}"


def test_no_key_is_401_with_challenge(anon_api):
    response = anon_api.get(user_url(UserFactory()))
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [
        {"HTTP_AUTHORIZATION": "Bearer kbt_deadbeef_not-a-real-secret"},
        {"HTTP_AUTHORIZATION": "Bearer garbage"},
        {"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"},
        {"HTTP_X_API_KEY": "kbt_deadbeef_not-a-real-secret"},
    ],
)
def test_bad_key_is_401(header):
    response = APIClient().get(user_url(UserFactory()), **header)
    assert_error(response, 401, "authentication_failed")


def test_right_prefix_wrong_secret_is_401(support_api):
    forged = support_api.plaintext[:-4] + "AAAA"
    response = APIClient().get(user_url(support_api.user), HTTP_AUTHORIZATION=f"Bearer {forged}")
    assert_error(response, 401, "authentication_failed")


@pytest.mark.parametrize("style", ["bearer", "x-api-key"])
def test_both_headers_authenticate(support_api, style):
    client = APIClient()
    if style == "bearer":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {support_api.plaintext}")
    else:
        client.credentials(HTTP_X_API_KEY=support_api.plaintext)
    assert client.get(user_url(support_api.user)).status_code == 200


def test_revoked_key_answers_401_at_once(admin_api, keyed_client):
    victim = keyed_client(["support"])
    assert victim.get(user_url(victim.user)).status_code == 200  # now cached
    assert admin_api.delete(f"/api/v1/apikeys/{victim.api_key.pk}").status_code == 204
    assert_error(victim.get(user_url(victim.user)), 401, "authentication_failed")


def test_expired_key_is_401(keyed_client):
    keyed = keyed_client(["support"], expires_at=timezone.now() + timedelta(hours=1))
    assert keyed.get(user_url(keyed.user)).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        assert_error(keyed.get(user_url(keyed.user)), 401, "authentication_failed")


def test_disabled_account_is_401(keyed_client):
    keyed = keyed_client(["support"])
    keyed.user.is_active = False
    keyed.user.save()
    from kobatela.accounts.authentication import forget_cached_key

    forget_cached_key(keyed.api_key.prefix)
    assert_error(keyed.get(user_url(keyed.user)), 401, "authentication_failed")


def test_wrong_scope_is_403(sender_api):
    assert_error(sender_api.get(user_url(sender_api.user)), 403, "permission_denied")


def test_last_used_at_written_at_most_once_a_minute(support_api):
    support_api.get(user_url(support_api.user))
    first = ApiKey.objects.get(pk=support_api.api_key.pk).last_used_at
    assert first is not None
    ApiKey.objects.filter(pk=support_api.api_key.pk).update(last_used_at=None)
    support_api.get(user_url(support_api.user))
    assert ApiKey.objects.get(pk=support_api.api_key.pk).last_used_at is None


def test_warm_key_costs_no_query(support_api, django_assert_num_queries):
    support_api.get(user_url(support_api.user))  # warms the key cache and last_used_at
    with django_assert_num_queries(1):  # the user row itself, nothing for auth
        assert support_api.get(user_url(support_api.user)).status_code == 200


def test_only_hash_is_stored(support_api):
    row = ApiKey.objects.get(pk=support_api.api_key.pk)
    assert support_api.plaintext not in str(vars(row))
    assert len(row.key_hash) == 64


@pytest.fixture
def unreachable_cache(settings, request):
    """The shared cache on a Redis that refuses connections, or takes them and never answers."""
    from kobatela.core.circuit_breaker import REDIS_OUTAGES
    from tests.faults.redis_servers import REFUSED_REDIS_URL, silent_redis

    def point_at(url):
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url,
                                       "OPTIONS": settings.REDIS_CLIENT_OPTIONS}}

    REDIS_OUTAGES.clear()
    if request.param == "refused":
        point_at(REFUSED_REDIS_URL)
        yield
    else:
        with silent_redis() as url:
            point_at(url)
            yield
    REDIS_OUTAGES.clear()


@pytest.mark.parametrize("unreachable_cache", ["refused", "silent"], indirect=True)
def test_without_the_shared_cache_keys_still_authenticate_and_last_use_is_written(unreachable_cache, keyed_client,
                                                                                  monkeypatch):
    from kobatela.accounts import authentication

    asked = []
    real_cache = authentication.cache

    class CountingCache:
        def add(self, *args, **kwargs):
            asked.append(args[0])
            return real_cache.add(*args, **kwargs)

    monkeypatch.setattr(authentication, "cache", CountingCache())
    first, second = keyed_client(["support"]), keyed_client(["support"])
    for keyed in (first, second):
        started = time.monotonic()
        assert keyed.get(user_url(keyed.user)).status_code == 200
        assert time.monotonic() - started < 1.0
        assert ApiKey.objects.get(pk=keyed.api_key.pk).last_used_at is not None  # written from this process
    assert len(asked) == 1  # the second key did not wait on the cache again
