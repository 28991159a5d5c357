/* plugin_mp.h as a C99 program: writes a payload, reads it back, finds
 * keys, refuses bad input, reports writer overflow. Exits non-zero, saying
 * what failed. (plugin_mp_test.cpp covers round trips against the C++ mp
 * and mutated inputs.) */
#include <taskmill/plugin_mp.h>

#include <stdio.h>
#include <string.h>

static int failures = 0;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
            ++failures;                                                        \
        }                                                                      \
    } while (0)

static void writes_and_reads_a_map(void) {
    uint8_t buf[128];
    tm_mp_writer w;
    tm_mp_reader r, v;
    tm_str s;
    int64_t i;
    uint64_t u;
    double d;
    int b;
    uint32_t n;
    tm_mp_writer_init(&w, buf, sizeof buf);
    tm_mp_write_map(&w, 5);
    tm_mp_write_str(&w, "name");
    tm_mp_write_str(&w, "ada");
    tm_mp_write_str(&w, "n");
    tm_mp_write_int(&w, -300);
    tm_mp_write_str(&w, "big");
    tm_mp_write_uint(&w, UINT64_MAX);
    tm_mp_write_str(&w, "ok");
    tm_mp_write_bool(&w, 1);
    tm_mp_write_str(&w, "list");
    tm_mp_write_array(&w, 2);
    tm_mp_write_float(&w, 2.5);
    tm_mp_write_nil(&w);
    CHECK(tm_mp_writer_ok(&w));

    tm_mp_reader_init(&r, w.data, w.size);
    CHECK(tm_mp_map_find(&r, "name", &v) && tm_mp_read_str(&v, &s) && s.size == 3 && memcmp(s.data, "ada", 3) == 0);
    CHECK(tm_mp_map_find(&r, "n", &v) && tm_mp_read_int(&v, &i) && i == -300);
    CHECK(tm_mp_map_find(&r, "big", &v) && !tm_mp_read_int(&v, &i) && tm_mp_read_uint(&v, &u) && u == UINT64_MAX);
    CHECK(tm_mp_map_find(&r, "ok", &v) && tm_mp_read_bool(&v, &b) && b == 1);
    CHECK(tm_mp_map_find(&r, "list", &v) && tm_mp_read_array(&v, &n) && n == 2);
    CHECK(tm_mp_read_float(&v, &d) && d == 2.5);
    CHECK(tm_mp_next_type(&v) == TM_MP_NIL && tm_mp_read_nil(&v));
    CHECK(!tm_mp_map_find(&r, "missing", &v));
    CHECK(r.pos == 0); /* find never moves the map's reader */
    CHECK(tm_mp_skip(&r) && tm_mp_done(&r));
}

static void refuses_wrong_types_without_moving(void) {
    static const uint8_t str[] = {0xa2, 'h', 'i'};
    tm_mp_reader r;
    int64_t i;
    tm_bytes bin;
    tm_mp_reader_init(&r, str, sizeof str);
    CHECK(!tm_mp_read_int(&r, &i) && r.pos == 0);
    CHECK(!tm_mp_read_bin(&r, &bin) && r.pos == 0);
    CHECK(tm_mp_next_type(&r) == TM_MP_STR);
}

static void refuses_truncated_input(void) {
    static const uint8_t str8[] = {0xd9, 10, 'a', 'b'};            /* says 10, has 2 */
    static const uint8_t arr32[] = {0xdd, 0xff, 0xff, 0xff, 0xff}; /* 4 billion items */
    static const uint8_t u16[] = {0xcd, 0x01};
    tm_mp_reader r;
    tm_str s;
    uint32_t n;
    uint64_t u;
    tm_mp_reader_init(&r, str8, sizeof str8);
    CHECK(!tm_mp_read_str(&r, &s) && !tm_mp_skip(&r) && r.pos == 0);
    tm_mp_reader_init(&r, arr32, sizeof arr32);
    CHECK(!tm_mp_read_array(&r, &n) && !tm_mp_skip(&r));
    tm_mp_reader_init(&r, u16, sizeof u16);
    CHECK(!tm_mp_read_uint(&r, &u) && !tm_mp_skip(&r));
    tm_mp_reader_init(&r, NULL, 0);
    CHECK(tm_mp_next_type(&r) == TM_MP_INVALID && !tm_mp_skip(&r));
}

static void reports_overflow(void) {
    uint8_t buf[4];
    tm_mp_writer w;
    tm_mp_writer_init(&w, buf, sizeof buf);
    tm_mp_write_str(&w, "too long for four bytes");
    CHECK(!tm_mp_writer_ok(&w));
    CHECK(w.size <= sizeof buf);
    tm_mp_write_nil(&w); /* ignored once overflowed */
    CHECK(!tm_mp_writer_ok(&w));
}

static void grows(void) {
    tm_mp_writer w;
    tm_mp_reader r;
    uint32_t n, k;
    int64_t v;
    int ok = 1;
    tm_mp_writer_init_growable(&w);
    tm_mp_write_array(&w, 1000);
    for (k = 0; k < 1000; ++k) tm_mp_write_int(&w, (int64_t)k * 1000);
    CHECK(tm_mp_writer_ok(&w));
    tm_mp_reader_init(&r, tm_mp_writer_bytes(&w).data, tm_mp_writer_bytes(&w).size);
    CHECK(tm_mp_read_array(&r, &n) && n == 1000);
    for (k = 0; k < n; ++k) ok = ok && tm_mp_read_int(&r, &v) && v == (int64_t)k * 1000;
    CHECK(ok && tm_mp_done(&r));
    tm_mp_writer_free(&w);
}

int main(void) {
    writes_and_reads_a_map();
    refuses_wrong_types_without_moving();
    refuses_truncated_input();
    reports_overflow();
    grows();
    if (failures != 0) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("plugin_mp.h: all checks passed\n");
    return 0;
}
