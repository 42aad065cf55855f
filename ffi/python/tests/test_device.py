"""AqmDevice through the uniffi Python bindings: real redb files, real crypto."""

import os
import threading
import time

import pytest

import aqm_ffi
from aqm_ffi import AqmError, AqmPriority, AqmTier
from conftest import HOME, OUTDOOR, UNDERGROUND, sent


def test_two_party_conversation_across_tiers(pair):
    alice, bob = pair
    coins = bob.mint(1, 1, 1)
    assert len(coins) == 3
    assert alice.cache_coins(bob.user_id(), coins) == 3
    assert alice.inventory(bob.user_id()) == aqm_ffi.AqmTierCounts(gold=1, silver=1, bronze=1)

    # Three contexts, three tiers: the first send opens a GOLD chain; when the context changes,
    # send_rekeyed opens a new chain with the tier the context now affords.
    for i, (ctx, tier, text) in enumerate(
        [(HOME, AqmTier.GOLD, b"home"), (OUTDOOR, AqmTier.SILVER, b"outdoors"), (UNDERGROUND, AqmTier.BRONZE, b"metro")]
    ):
        m = sent((alice.send if i == 0 else alice.send_rekeyed)(bob.user_id(), text, ctx))
        assert (m.tier, m.rekeyed, m.fell_back, m.post_quantum) == (tier, True, False, tier != AqmTier.BRONZE)
        assert not m.last_resort, "a cached coin is always one-time"
        got = bob.receive(m.envelope)
        assert (got.plaintext, got.sender, got.tier, got.unverified) == (text, alice.user_id(), tier, False)
        assert not got.last_resort
    # A follow-up rides the open BRONZE chain: no coin used.
    m = sent(alice.send(bob.user_id(), b"again", UNDERGROUND))
    assert (m.tier, m.rekeyed, m.remaining) == (AqmTier.BRONZE, False, 3)
    assert bob.receive(m.envelope).counter == 1
    assert alice.inventory(bob.user_id()) == aqm_ffi.AqmTierCounts(gold=0, silver=0, bronze=0)
    assert bob.vault_stats().total_burned == 3

    # Bob answers with a BRONZE coin Alice handed him directly.
    out = bob.send(alice.user_id(), b"underground", UNDERGROUND)
    assert out.is_NEED_COIN() and out.desired == AqmTier.BRONZE
    reply = bob.send_with_coin(alice.user_id(), alice.mint(0, 0, 1)[0], b"underground")
    assert reply.tier == AqmTier.BRONZE and not reply.post_quantum
    assert alice.receive(reply.envelope).plaintext == b"underground"

    assert alice.set_priority(bob.user_id(), AqmPriority.MATE) == 0
    alice.cache_coins(bob.user_id(), bob.mint(0, 2, 0))
    report = alice.storage_report()
    assert report.contacts == 1 and 0 < report.total_bytes < report.budget_bytes and not report.over_budget


def test_silver_when_outdoors(pair):
    alice, bob = pair
    alice.cache_coins(bob.user_id(), bob.mint(0, 1, 0))
    m = sent(alice.send(bob.user_id(), b"on my way", OUTDOOR))
    assert (m.tier, m.desired, m.fell_back, m.rekeyed) == (AqmTier.SILVER, AqmTier.SILVER, False, True)
    assert bob.receive(m.envelope).tier == AqmTier.SILVER


def test_gold_wanted_falls_back_to_silver_but_never_to_bronze(pair):
    alice, bob = pair
    alice.cache_coins(bob.user_id(), bob.mint(0, 0, 1))
    out = alice.send(bob.user_id(), b"x", HOME)
    assert out.is_NEED_COIN() and (out.desired, out.lowest) == (AqmTier.GOLD, AqmTier.SILVER)
    m = sent(alice.send(bob.user_id(), b"x", HOME, allow_classical=True))
    assert m.tier == AqmTier.BRONZE and m.fell_back and not m.post_quantum


def test_burn_after_open(pair):
    alice, bob = pair
    alice.cache_coins(bob.user_id(), bob.mint(1, 0, 0))
    m = sent(alice.send(bob.user_id(), b"once", HOME))
    assert bob.receive(m.envelope).plaintext == b"once"
    assert bob.vault_stats().total_burned == 1
    with pytest.raises(AqmError.KeyAlreadyBurned) as e:
        bob.receive(m.envelope)
    assert "burned" in str(e.value)


def test_typed_errors_for_bad_input(pair, open_device, tmp_path):
    alice, bob = pair
    before = bob.vault_stats()
    for garbage in [b"", b"\xff" * 10, b"\x02" * 300, os.urandom(2000)]:
        with pytest.raises((AqmError.Malformed, AqmError.UnsupportedVersion, AqmError.EnvelopeTooLarge)):
            bob.receive(garbage)
    with pytest.raises(AqmError.EnvelopeTooLarge):
        bob.receive(b"\x02" * 70_000)
    assert bob.vault_stats() == before
    with pytest.raises(AqmError.BadLength) as e:
        alice.inventory(b"\x01\x02\x03")
    assert (e.value.expected, e.value.got) == (16, 3)
    with pytest.raises(AqmError.Malformed):
        alice.add_contact(os.urandom(16), b"not an identity", AqmPriority.MATE)
    with pytest.raises(AqmError.IdMismatch):
        alice.add_contact(os.urandom(16), bob.public_identity(), AqmPriority.MATE)
    with pytest.raises(AqmError.MessageTooLarge):
        alice.send(bob.user_id(), b"x" * 5000, HOME)
    with pytest.raises(AqmError.IdentityNotPinned):
        alice.send(os.urandom(16), b"x", HOME)
    with pytest.raises(AqmError.BadDeviceKey):
        aqm_ffi.AqmDevice.open(f"redb://{tmp_path / 'k.redb'}", b"short")
    with pytest.raises(AqmError.InvalidUrl):
        aqm_ffi.AqmDevice.open("ftp://example/x", os.urandom(32))
    key = os.urandom(32)
    open_device("same", key)
    with pytest.raises(AqmError.SealBroken):
        open_device("same", os.urandom(32))
    # A tampered envelope does not open and burns nothing; the intact one still opens.
    alice.cache_coins(bob.user_id(), bob.mint(0, 1, 0))
    m = sent(alice.send(bob.user_id(), b"secret", OUTDOOR))
    bad = bytearray(m.envelope)
    bad[-1] ^= 1
    with pytest.raises(AqmError.DecryptFailed):
        bob.receive(bytes(bad))
    assert bob.receive(m.envelope).plaintext == b"secret"


def test_forged_coins_refused(pair, open_device):
    alice, bob = pair
    coin = bytearray(bob.mint(0, 1, 0)[0])
    coin[-5] ^= 1  # a bit of the signature
    with pytest.raises(AqmError.BadSignature):
        alice.cache_coins(bob.user_id(), [bytes(coin)])
    with pytest.raises(AqmError.BadSignature):
        alice.send_with_coin(bob.user_id(), bytes(coin), b"x")
    carol = open_device("carol")
    with pytest.raises(AqmError.WrongOwner):
        alice.cache_coins(bob.user_id(), carol.mint(0, 1, 0))
    assert alice.inventory(bob.user_id()) == aqm_ffi.AqmTierCounts(gold=0, silver=0, bronze=0)


def test_many_threads_send_at_once(pair):
    alice, bob = pair
    alice.cache_coins(bob.user_id(), bob.mint(5, 4, 1))
    envelopes, errors, lock = [], [], threading.Lock()

    def worker(t):
        for i in range(3):
            text = f"t{t} m{i}".encode()
            while True:
                try:
                    m = sent(alice.send(bob.user_id(), text, HOME))
                    break
                except AqmError.SessionConflict:
                    continue
                except Exception as e:  # noqa: BLE001 - reported below
                    with lock:
                        errors.append(e)
                    return
            with lock:
                envelopes.append(m.envelope)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(envelopes) == 24
    opened, pending = set(), list(envelopes)
    for _ in range(24):
        rest = []
        for e in pending:
            try:
                got = bob.receive(e)
                assert got.plaintext not in opened
                opened.add(got.plaintext)
            except AqmError.NoSession:
                rest.append(e)
        pending = rest
    assert pending == [] and len(opened) == 24
    # Sends to one contact take turns: one GOLD chain (25 messages), one coin spent.
    assert alice.inventory(bob.user_id()) == aqm_ffi.AqmTierCounts(gold=4, silver=4, bronze=1)


def test_identity_is_sealed_and_survives_reopen(open_device):
    key = os.urandom(32)
    d = open_device("me", key)
    uid, public, sealed = d.user_id(), d.public_identity(), d.identity()
    assert len(uid) == 16 and len(sealed) == 110
    del d
    again = open_device("me", key)
    assert (again.user_id(), again.public_identity()) == (uid, public)


def test_backup_restores_into_a_new_store(tmp_path, open_device):
    key = os.urandom(32)
    old = open_device("old", key)
    backup = old.identity()
    with pytest.raises(AqmError.SealBroken):
        aqm_ffi.AqmDevice.restore(f"redb://{tmp_path / 'new.redb'}", os.urandom(32), backup)
    restored = aqm_ffi.AqmDevice.restore(f"redb://{tmp_path / 'new.redb'}", key, backup)
    assert (restored.user_id(), restored.public_identity()) == (old.user_id(), old.public_identity())


def test_housekeeping(pair):
    alice, bob = pair
    alice.cache_coins(bob.user_id(), bob.mint(0, 2, 0))
    now = int(time.time())
    assert bob.purge(now).expired == 0
    assert bob.purge(now + 60 * 86400).expired == 2
    dry = alice.collect_garbage(now + 40 * 86400, dry_run=True)
    assert (dry.contacts_cleaned, dry.keys_deleted) == (1, 2)
    assert alice.collect_garbage(now + 40 * 86400).keys_deleted == 2
    assert alice.safety_number(bob.user_id()) == bob.safety_number(alice.user_id())


def test_server_calls_need_a_token(pair):
    alice, bob = pair
    with pytest.raises(AqmError.ServerUnauthorized):
        alice.prefetch("http://127.0.0.1:9", bob.user_id())
    with pytest.raises(AqmError.ServerUnavailable):
        alice.register("http://127.0.0.1:9")


def test_publish_keeps_one_last_resort_coin_per_tier_even_when_the_upload_fails(pair):
    _, bob = pair
    bob.mint(1, 0, 2)
    # The last-resort coins (GOLD and BRONZE, the tiers being published) go to the vault before
    # the upload, and stay queued with the one-time coins when it fails.
    with pytest.raises(AqmError.ServerUnavailable):
        bob.publish("http://127.0.0.1:9", "token")
    assert bob.vault_stats().active == aqm_ffi.AqmTierCounts(gold=2, silver=0, bronze=3)
    # A retry finds them live: no second set is minted.
    with pytest.raises(AqmError.ServerUnavailable):
        bob.publish("http://127.0.0.1:9", "token")
    assert bob.vault_stats().active == aqm_ffi.AqmTierCounts(gold=2, silver=0, bronze=3)
