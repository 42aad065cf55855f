/*
 * AQM from C: two devices on redb files talk across three tiers, then every kind of bad input
 * the C ABI must survive (null pointers, short buffers, garbage envelopes, forged coins), then
 * four threads send through one handle at once. Run under valgrind by ffi/c/run-example.sh.
 *
 * Build: gcc -std=c11 -Wall -Wextra -Werror -I ffi/include ffi/c/example.c -L <dir of
 *        libaqm_ffi.so> -laqm_ffi -lpthread -o aqm-example
 * Run:   ./aqm-example            (exit 0 and a final "N passed, 0 failed" line when all pass)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aqm.h"

static int passed, failed;

#define CHECK(cond, what)                                                        \
    do {                                                                         \
        if (cond) {                                                              \
            passed++;                                                            \
        } else {                                                                 \
            failed++;                                                            \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, what);       \
        }                                                                        \
    } while (0)

#define EXPECT(status, want, what)                                                              \
    do {                                                                                        \
        AqmStatus s_ = (status);                                                                \
        if (s_ == (want)) {                                                                     \
            passed++;                                                                           \
        } else {                                                                                \
            char m_[512];                                                                       \
            size_t l_ = 0;                                                                      \
            aqm_last_error_message(m_, sizeof m_, &l_);                                         \
            failed++;                                                                           \
            fprintf(stderr, "FAIL %s:%d: %s: got %s (%d), want %s: %s\n", __FILE__, __LINE__, what, \
                    aqm_status_name(s_), (int)s_, aqm_status_name(want), m_);                   \
        }                                                                                       \
    } while (0)

enum { GOLD = 1, SILVER = 2, BRONZE = 3, BESTIE = 1 };

static const AqmCContext HOME = {85, true, -60};
static const AqmCContext OUTDOOR = {60, false, -85};
static const AqmCContext UNDERGROUND = {40, false, -110};

typedef struct {
    AqmDevice *dev;
    uint8_t id[AQM_ID_LEN];
    uint8_t *pub;
    size_t pub_len;
} Party;

static void open_party(Party *p, const char *dir, const char *name, uint8_t key_byte) {
    char url[512];
    uint8_t key[AQM_DEVICE_KEY_LEN];
    size_t len = 0;
    memset(key, key_byte, sizeof key);
    snprintf(url, sizeof url, "redb://%s/%s.redb", dir, name);
    EXPECT(aqm_device_open(url, key, sizeof key, &p->dev), AQM_STATUS_OK, "open a device");
    EXPECT(aqm_device_user_id(p->dev, p->id, sizeof p->id, &len), AQM_STATUS_OK, "user id");
    CHECK(len == AQM_ID_LEN, "user id is 16 bytes");
    /* Ask for the size first: a zero-capacity call says how much is needed. */
    EXPECT(aqm_device_public_identity(p->dev, NULL, 0, &p->pub_len), AQM_STATUS_BUFFER_TOO_SMALL,
           "public identity into no buffer");
    p->pub = malloc(p->pub_len);
    EXPECT(aqm_device_public_identity(p->dev, p->pub, p->pub_len, &p->pub_len), AQM_STATUS_OK, "public identity");
}

static void close_party(Party *p) {
    aqm_device_free(p->dev);
    free(p->pub);
}

/* Bob mints one coin of `tier` and Alice caches it. */
static void hand_coin(Party *from, Party *to, uint8_t tier) {
    uint8_t coin[AQM_MAX_COIN_LEN];
    size_t len = 0;
    EXPECT(aqm_device_mint(from->dev, tier, coin, sizeof coin, &len), AQM_STATUS_OK, "mint");
    EXPECT(aqm_device_cache_coin(to->dev, from->id, AQM_ID_LEN, coin, len), AQM_STATUS_OK, "cache a coin");
}

static uint8_t envelope[AQM_MAX_ENVELOPE_LEN];

static void conversation(Party *alice, Party *bob) {
    bool added = false;
    EXPECT(aqm_device_add_contact(alice->dev, bob->id, AQM_ID_LEN, bob->pub, bob->pub_len, BESTIE, &added),
           AQM_STATUS_OK, "Alice adds Bob");
    CHECK(added, "Bob is new to Alice");
    EXPECT(aqm_device_add_contact(bob->dev, alice->id, AQM_ID_LEN, alice->pub, alice->pub_len, BESTIE, &added),
           AQM_STATUS_OK, "Bob adds Alice");
    hand_coin(bob, alice, GOLD);
    AqmTierCounts inv;
    EXPECT(aqm_device_inventory(alice->dev, bob->id, AQM_ID_LEN, &inv), AQM_STATUS_OK, "inventory");
    CHECK(inv.gold == 1 && inv.silver == 0 && inv.bronze == 0, "one GOLD coin cached");

    const struct { const AqmCContext *ctx; uint8_t tier; const char *text; } steps[] = {
        {&HOME, GOLD, "Hi Bob, home at last."},
        {&OUTDOOR, SILVER, "On my way to the station."},
        {&UNDERGROUND, BRONZE, "In the metro, see you soon."},
    };
    for (size_t i = 0; i < 3; i++) {
        size_t env_len = 0, pt_len = 0;
        AqmSendInfo info;
        AqmReceiveInfo rinfo;
        char plaintext[AQM_MAX_MESSAGE_LEN];
        if (i > 0) {
            /* A new chain per context: the open chain's coin is used up by sending on a new coin. */
            uint8_t coin[AQM_MAX_COIN_LEN];
            size_t coin_len = 0;
            EXPECT(aqm_device_mint(bob->dev, steps[i].tier, coin, sizeof coin, &coin_len), AQM_STATUS_OK, "mint");
            EXPECT(aqm_device_send_with_coin(alice->dev, bob->id, AQM_ID_LEN, coin, coin_len,
                                             (const uint8_t *)steps[i].text, strlen(steps[i].text), envelope,
                                             sizeof envelope, &env_len, &info),
                   AQM_STATUS_OK, "send with a coin");
        } else {
            EXPECT(aqm_device_send(alice->dev, bob->id, AQM_ID_LEN, (const uint8_t *)steps[i].text,
                                   strlen(steps[i].text), steps[i].ctx, false, envelope, sizeof envelope, &env_len,
                                   &info),
                   AQM_STATUS_OK, "send");
        }
        CHECK(info.tier == steps[i].tier && info.rekeyed, "message opened a chain of the context's tier");
        CHECK(info.post_quantum == (steps[i].tier != BRONZE), "post-quantum unless BRONZE");
        CHECK(!info.last_resort, "a cached coin is one-time, never last-resort");
        EXPECT(aqm_device_receive(bob->dev, envelope, env_len, (uint8_t *)plaintext, sizeof plaintext, &pt_len, &rinfo),
               AQM_STATUS_OK, "receive");
        CHECK(pt_len == strlen(steps[i].text) && memcmp(plaintext, steps[i].text, pt_len) == 0, "plaintext");
        CHECK(memcmp(rinfo.sender, alice->id, AQM_ID_LEN) == 0 && rinfo.tier == steps[i].tier, "sender and tier");
        /* Burn after open: the same envelope never opens twice. */
        EXPECT(aqm_device_receive(bob->dev, envelope, env_len, (uint8_t *)plaintext, sizeof plaintext, &pt_len, &rinfo),
               AQM_STATUS_KEY_ALREADY_BURNED, "a coin opens once");
    }
    AqmVaultStats stats;
    EXPECT(aqm_device_vault_stats(bob->dev, &stats), AQM_STATUS_OK, "vault stats");
    CHECK(stats.total_burned == 3, "three coins burned");
    /* Nothing cached any more and the chain is BRONZE: a GOLD-context send asks for a coin. */
    size_t env_len = 0;
    AqmSendInfo info;
    EXPECT(aqm_device_send(bob->dev, alice->id, AQM_ID_LEN, (const uint8_t *)"x", 1, &HOME, false, envelope,
                           sizeof envelope, &env_len, &info),
           AQM_STATUS_NEED_COIN, "no coin of Alice's: NEED_COIN");
    CHECK(env_len == 0 && info.desired == GOLD && info.lowest == SILVER, "NEED_COIN names the range");
}

static void bad_input(Party *alice, Party *bob) {
    uint8_t buf[64];
    size_t len = 0;
    AqmReceiveInfo rinfo;
    AqmSendInfo info;
    AqmVaultStats before, after;
    char msg[8];
    EXPECT(aqm_device_vault_stats(bob->dev, &before), AQM_STATUS_OK, "vault stats");

    /* Null pointers. */
    EXPECT(aqm_device_user_id(NULL, buf, sizeof buf, &len), AQM_STATUS_NULL_POINTER, "null handle");
    EXPECT(aqm_device_user_id(alice->dev, buf, sizeof buf, NULL), AQM_STATUS_NULL_POINTER, "null out_len");
    EXPECT(aqm_device_user_id(alice->dev, NULL, 16, &len), AQM_STATUS_NULL_POINTER, "null out");
    EXPECT(aqm_device_open(NULL, buf, 32, NULL), AQM_STATUS_NULL_POINTER, "null url");
    EXPECT(aqm_device_receive(bob->dev, NULL, 100, buf, sizeof buf, &len, &rinfo), AQM_STATUS_NULL_POINTER,
           "null envelope with a length");
    EXPECT(aqm_device_send(alice->dev, bob->id, AQM_ID_LEN, (const uint8_t *)"x", 1, NULL, false, envelope,
                           sizeof envelope, &len, &info),
           AQM_STATUS_NULL_POINTER, "null context");
    EXPECT(aqm_device_vault_stats(bob->dev, NULL), AQM_STATUS_NULL_POINTER, "null stats");
    aqm_device_free(NULL); /* ignored */

    /* Short buffers: refused before anything happens, with the size needed. */
    EXPECT(aqm_device_user_id(alice->dev, buf, 3, &len), AQM_STATUS_BUFFER_TOO_SMALL, "3-byte id buffer");
    CHECK(len == AQM_ID_LEN, "needed size reported");
    EXPECT(aqm_device_send(alice->dev, bob->id, AQM_ID_LEN, (const uint8_t *)"x", 1, &HOME, false, buf, sizeof buf,
                           &len, &info),
           AQM_STATUS_BUFFER_TOO_SMALL, "64-byte envelope buffer");
    CHECK(len == AQM_MAX_ENVELOPE_LEN, "needed envelope size reported");
    EXPECT(aqm_device_mint(bob->dev, GOLD, buf, sizeof buf, &len), AQM_STATUS_BUFFER_TOO_SMALL, "short coin buffer");
    EXPECT(aqm_last_error_message(msg, sizeof msg, &len), AQM_STATUS_BUFFER_TOO_SMALL, "short message buffer");
    CHECK(len > sizeof msg, "message size reported");

    /* Garbage envelopes and wrong sizes. */
    uint8_t garbage[300];
    memset(garbage, 0xff, sizeof garbage);
    EXPECT(aqm_device_receive(bob->dev, garbage, sizeof garbage, (uint8_t *)envelope, sizeof envelope, &len, &rinfo),
           AQM_STATUS_UNSUPPORTED_VERSION, "0xff... envelope");
    memset(garbage, 0x02, sizeof garbage);
    EXPECT(aqm_device_receive(bob->dev, garbage, sizeof garbage, (uint8_t *)envelope, sizeof envelope, &len, &rinfo),
           AQM_STATUS_MALFORMED, "truncated v2 envelope");
    srand(7);
    for (int i = 0; i < 200; i++) {
        size_t n = (size_t)(rand() % (int)sizeof garbage);
        for (size_t j = 0; j < n; j++) garbage[j] = (uint8_t)rand();
        AqmStatus s = aqm_device_receive(bob->dev, garbage, n, (uint8_t *)envelope, sizeof envelope, &len, &rinfo);
        CHECK(s != AQM_STATUS_OK && s != AQM_STATUS_INTERNAL, "random bytes are refused with a typed status");
    }
    EXPECT(aqm_device_receive(bob->dev, NULL, 0, buf, sizeof buf, &len, &rinfo), AQM_STATUS_MALFORMED, "empty envelope");
    EXPECT(aqm_device_inventory(alice->dev, bob->id, 3, &(AqmTierCounts){0}), AQM_STATUS_BAD_LENGTH, "3-byte id");
    EXPECT(aqm_device_mint(bob->dev, 9, envelope, sizeof envelope, &len), AQM_STATUS_UNKNOWN_TIER, "tier 9");
    bool added;
    EXPECT(aqm_device_add_contact(alice->dev, bob->id, AQM_ID_LEN, bob->pub, bob->pub_len, 7, &added),
           AQM_STATUS_UNKNOWN_PRIORITY, "priority 7");
    EXPECT(aqm_device_add_contact(alice->dev, bob->id, AQM_ID_LEN, garbage, 50, BESTIE, &added), AQM_STATUS_MALFORMED,
           "garbage identity");
    EXPECT(aqm_device_open("ftp://nowhere", buf, 32, &(AqmDevice *){NULL}), AQM_STATUS_INVALID_URL, "bad URL");
    EXPECT(aqm_device_open("redb:///tmp/aqm-never", buf, 5, &(AqmDevice *){NULL}), AQM_STATUS_BAD_DEVICE_KEY,
           "5-byte device key");

    /* A forged coin (one flipped signature bit) is refused. */
    uint8_t coin[AQM_MAX_COIN_LEN];
    size_t coin_len = 0;
    EXPECT(aqm_device_mint(bob->dev, SILVER, coin, sizeof coin, &coin_len), AQM_STATUS_OK, "mint");
    coin[coin_len - 5] ^= 1;
    EXPECT(aqm_device_cache_coin(alice->dev, bob->id, AQM_ID_LEN, coin, coin_len), AQM_STATUS_BAD_SIGNATURE,
           "forged coin");
    coin[coin_len - 5] ^= 1;

    /* A tampered envelope does not open and burns nothing; the intact one still does. */
    EXPECT(aqm_device_cache_coin(alice->dev, bob->id, AQM_ID_LEN, coin, coin_len), AQM_STATUS_OK, "real coin");
    size_t env_len = 0;
    EXPECT(aqm_device_send(alice->dev, bob->id, AQM_ID_LEN, (const uint8_t *)"secret", 6, &OUTDOOR, false, envelope,
                           sizeof envelope, &env_len, &info),
           AQM_STATUS_OK, "send");
    envelope[env_len - 1] ^= 1;
    char pt[16];
    EXPECT(aqm_device_receive(bob->dev, envelope, env_len, (uint8_t *)pt, sizeof pt, &len, &rinfo),
           AQM_STATUS_DECRYPT_FAILED, "tampered envelope");
    EXPECT(aqm_device_receive(bob->dev, envelope, env_len, (uint8_t *)pt, 2, &len, &rinfo), AQM_STATUS_BUFFER_TOO_SMALL,
           "2-byte plaintext buffer");
    envelope[env_len - 1] ^= 1;
    EXPECT(aqm_device_vault_stats(bob->dev, &after), AQM_STATUS_OK, "vault stats");
    CHECK(after.total_burned == before.total_burned, "nothing burned by bad input");
    EXPECT(aqm_device_receive(bob->dev, envelope, env_len, (uint8_t *)pt, sizeof pt, &len, &rinfo), AQM_STATUS_OK,
           "the intact envelope opens");
    CHECK(len == 6 && memcmp(pt, "secret", 6) == 0, "plaintext");
}

typedef struct {
    Party *alice, *bob;
    int sent;
} Job;

static void *sender(void *arg) {
    Job *job = arg;
    static __thread uint8_t env[AQM_MAX_ENVELOPE_LEN];
    for (int i = 0; i < 3; i++) {
        size_t len = 0;
        AqmSendInfo info;
        AqmStatus s;
        do {
            s = aqm_device_send(job->alice->dev, job->bob->id, AQM_ID_LEN, (const uint8_t *)"hello", 5, &HOME, false,
                                env, sizeof env, &len, &info);
        } while (s == AQM_STATUS_SESSION_CONFLICT);
        if (s == AQM_STATUS_OK) {
            job->sent++;
        } else {
            char m[512];
            size_t l = 0;
            aqm_last_error_message(m, sizeof m, &l);
            fprintf(stderr, "thread send: %s: %s\n", aqm_status_name(s), m);
        }
    }
    return NULL;
}

static void threads(Party *alice, Party *bob) {
    /* Sends to one contact take turns inside the handle, so the threads share one chain and no
       racer holds a coin another thread needed; the spare coins only let a chain that runs out
       open the next one. */
    for (int i = 0; i < 5; i++) hand_coin(bob, alice, GOLD);
    pthread_t t[4];
    Job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (Job){alice, bob, 0};
        pthread_create(&t[i], NULL, sender, &jobs[i]);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        total += jobs[i].sent;
    }
    CHECK(total == 12, "four threads sent three messages each through one handle");
}
/* A backup of Alice's sealed identity restores into a new store, only under her device key. */
static void restore(Party *alice, const char *dir) {
    uint8_t sealed[AQM_SEALED_IDENTITY_LEN], key[AQM_DEVICE_KEY_LEN], id[AQM_ID_LEN];
    size_t len = 0;
    char url[512];
    AqmDevice *dev = NULL;
    EXPECT(aqm_device_sealed_identity(alice->dev, sealed, sizeof sealed, &len), AQM_STATUS_OK, "sealed identity");
    snprintf(url, sizeof url, "redb://%s/restored.redb", dir);
    memset(key, 9, sizeof key);
    EXPECT(aqm_device_restore(url, key, sizeof key, sealed, len, &dev), AQM_STATUS_SEAL_BROKEN,
           "restore under another key");
    EXPECT(aqm_device_restore(url, key, sizeof key, NULL, len, &dev), AQM_STATUS_NULL_POINTER, "restore from null");
    memset(key, 1, sizeof key);
    EXPECT(aqm_device_restore(url, key, sizeof key, sealed, len, &dev), AQM_STATUS_OK, "restore the backup");
    EXPECT(aqm_device_user_id(dev, id, sizeof id, &len), AQM_STATUS_OK, "restored user id");
    CHECK(memcmp(id, alice->id, sizeof id) == 0, "the restored device is Alice");
    aqm_device_free(dev);
}

/* The ABI kept for callers built against an older header: codes added later are appended, and
   AqmSendInfo's last_resort sits in what was padding. */
_Static_assert(sizeof(AqmSendInfo) == 16, "AqmSendInfo keeps its size");
static void abi(void) {
    CHECK(AQM_STATUS_SIGNER_FAILED == 48 && AQM_STATUS_SERVER == 107, "old status codes keep their numbers");
    CHECK(AQM_STATUS_NOT_LAST_RESORT == 49 && AQM_STATUS_LAST_RESORT_NOT_CACHED == 50, "last-resort codes appended");
    CHECK(strcmp(aqm_status_name(AQM_STATUS_LAST_RESORT_NOT_CACHED), "LAST_RESORT_NOT_CACHED") == 0 &&
              strcmp(aqm_status_name(AQM_STATUS_NOT_LAST_RESORT), "NOT_LAST_RESORT") == 0,
          "last-resort status names");
}

int main(void) {
    abi();
    char dir[] = "/tmp/aqm-c-example-XXXXXX";
    if (!mkdtemp(dir)) return 2;
    Party alice, bob;
    open_party(&alice, dir, "alice", 1);
    open_party(&bob, dir, "bob", 2);
    conversation(&alice, &bob);
    bad_input(&alice, &bob);
    threads(&alice, &bob);
    restore(&alice, dir);
    close_party(&alice);
    close_party(&bob);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
