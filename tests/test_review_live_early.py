from datetime import timedelta

from phonein.times import utcnow

from .conftest import make_forum


def test_patch_after_going_live_early(client, producer):
    f = make_forum(starts_at=utcnow() + timedelta(minutes=10, seconds=20))
    planned_end = f.ends_at
    r = client.patch(f"/api/v1/forums/{f.slug}", json={"status": "live"}, headers=producer)
    from phonein.times import rfc3339

    assert r.get_json()["ends_at"] == rfc3339(planned_end)  # the planned end stands
    r = client.patch(f"/api/v1/forums/{f.slug}", json={"title": "Typo fixed"}, headers=producer)
    assert r.status_code == 200


def test_go_live_a_day_early_breaks_duration(client, producer):
    f = make_forum(starts_at=utcnow() + timedelta(days=2))
    r = client.patch(f"/api/v1/forums/{f.slug}", json={"status": "live"}, headers=producer)
    assert r.get_json()["duration_minutes"] <= 1440
