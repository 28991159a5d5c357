// plugin_mp.h (the C helper) compiled as C++, checked against the C++ mp of
// plugin.hpp: what one writes the other reads back equal, and mutated or
// truncated inputs never make the C reader accept more than the input.
#include <taskmill/plugin_mp.h>
#include <taskmill/plugin.hpp>

#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>

namespace mp = taskmill::plugin::mp;

namespace {

// Reads one value with the C reader into an mp::value; nullopt on any
// refusal (also the C++ mp's own limits: string keys, depth 64, no ext).
std::optional<mp::value> read_c(tm_mp_reader& r, int depth = 0) {
    if (depth > 64) return std::nullopt;
    switch (tm_mp_next_type(&r)) {
        case TM_MP_NIL: return tm_mp_read_nil(&r) ? std::optional<mp::value>(mp::value()) : std::nullopt;
        case TM_MP_BOOL: {
            int b = 0;
            return tm_mp_read_bool(&r, &b) ? std::optional<mp::value>(mp::value(b != 0)) : std::nullopt;
        }
        case TM_MP_INT: {
            int64_t i = 0;
            uint64_t u = 0;
            if (tm_mp_read_int(&r, &i)) return mp::value(i);
            if (tm_mp_read_uint(&r, &u)) return mp::value(static_cast<double>(u));  // as the C++ mp does
            return std::nullopt;
        }
        case TM_MP_FLOAT: {
            double d = 0;
            return tm_mp_read_float(&r, &d) ? std::optional<mp::value>(mp::value(d)) : std::nullopt;
        }
        case TM_MP_STR: {
            tm_str s{};
            if (!tm_mp_read_str(&r, &s)) return std::nullopt;
            return mp::value(std::string(s.data, s.size));
        }
        case TM_MP_BIN: {
            tm_bytes b{};
            if (!tm_mp_read_bin(&r, &b)) return std::nullopt;
            return mp::value::binary(std::string(reinterpret_cast<const char*>(b.data), b.size));
        }
        case TM_MP_ARRAY: {
            uint32_t n = 0;
            if (!tm_mp_read_array(&r, &n)) return std::nullopt;
            mp::value a = mp::value::array();
            for (uint32_t i = 0; i < n; ++i) {
                auto item = read_c(r, depth + 1);
                if (!item) return std::nullopt;
                a.push_back(std::move(*item));
            }
            return a;
        }
        case TM_MP_MAP: {
            uint32_t n = 0;
            if (!tm_mp_read_map(&r, &n)) return std::nullopt;
            mp::value::map_t entries;  // duplicate keys kept, as the C++ mp does
            for (uint32_t i = 0; i < n; ++i) {
                tm_str k{};
                if (!tm_mp_read_str(&r, &k)) return std::nullopt;
                auto item = read_c(r, depth + 1);
                if (!item) return std::nullopt;
                entries.emplace_back(std::string(k.data, k.size), std::move(*item));
            }
            return mp::value::map(std::move(entries));
        }
        default: return std::nullopt;
    }
}

std::optional<mp::value> read_c(const std::string& bytes) {
    tm_mp_reader r;
    tm_mp_reader_init(&r, bytes.data(), bytes.size());
    auto v = read_c(r);
    if (!v || !tm_mp_done(&r)) return std::nullopt;
    return v;
}

// Writes an mp::value with the C writer.
void write_c(tm_mp_writer& w, const mp::value& v) {
    switch (v.type()) {
        case mp::kind::nil: tm_mp_write_nil(&w); break;
        case mp::kind::boolean: tm_mp_write_bool(&w, v.as_bool() ? 1 : 0); break;
        case mp::kind::integer: tm_mp_write_int(&w, v.as_int()); break;
        case mp::kind::floating: tm_mp_write_float(&w, v.as_double()); break;
        case mp::kind::string: {
            std::string s = v.as_string();
            tm_mp_write_str_n(&w, s.data(), s.size());
            break;
        }
        case mp::kind::binary: {
            std::string s = v.as_string();
            tm_mp_write_bin(&w, s.data(), s.size());
            break;
        }
        case mp::kind::array:
            tm_mp_write_array(&w, static_cast<uint32_t>(v.items().size()));
            for (const auto& item : v.items()) write_c(w, item);
            break;
        case mp::kind::map:
            tm_mp_write_map(&w, static_cast<uint32_t>(v.entries().size()));
            for (const auto& [k, item] : v.entries()) {
                tm_mp_write_str_n(&w, k.data(), k.size());
                write_c(w, item);
            }
            break;
    }
}

std::string write_c(const mp::value& v) {
    tm_mp_writer w;
    tm_mp_writer_init_growable(&w);
    write_c(w, v);
    EXPECT_TRUE(tm_mp_writer_ok(&w));
    std::string out(reinterpret_cast<const char*>(w.data), w.size);
    tm_mp_writer_free(&w);
    return out;
}

mp::value sample() {
    mp::value many = mp::value::array();
    for (int i = 0; i < 20; ++i) many.push_back(i * 1000);
    mp::value wide = mp::value::map();
    for (int i = 0; i < 20; ++i) wide.set("k" + std::to_string(i), i);
    return mp::value::map({{"s", "hello"},
                           {"ints", mp::value::array({0, 127, 128, 255, 256, 65535, 65536, int64_t{1} << 40, -1, -32,
                                                      -33, -128, -129, -32768, -32769, INT64_MIN, INT64_MAX})},
                           {"f", -2.5},
                           {"t", true},
                           {"n", nullptr},
                           {"bin", mp::value::binary(std::string("\x00\xff", 2))},
                           {"str8", std::string(40, 'x')},
                           {"str16", std::string(300, 'y')},
                           {"str32", std::string(70000, 'z')},
                           {"many", many},
                           {"wide", wide},
                           {"nested", mp::value::array({mp::value::map({{"a", mp::value::array()}})})}});
}

}  // namespace

TEST(plugin_mp, c_writer_output_reads_back_equal_in_cpp) {
    mp::value v = sample();
    auto back = mp::unpack(write_c(v));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, v);
}

TEST(plugin_mp, cpp_output_reads_back_equal_in_c) {
    mp::value v = sample();
    auto back = read_c(mp::pack(v));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, v);
}

TEST(plugin_mp, float32_and_every_int_width_read) {
    // float32 1.5, uint8 200, int16 -300, uint32 70000, int8 -100, uint64 2^63
    std::string bytes(
        "\x96\xca\x3f\xc0\x00\x00\xcc\xc8\xd1\xfe\xd4\xce\x00\x01\x11\x70\xd0\x9c"
        "\xcf\x80\x00\x00\x00\x00\x00\x00\x00",
        27);
    auto c = read_c(bytes);
    auto cpp = mp::unpack(bytes);
    ASSERT_TRUE(c.has_value());
    ASSERT_TRUE(cpp.has_value());
    EXPECT_EQ(*c, *cpp);
    EXPECT_EQ(c->items()[0].as_double(), 1.5);
}

TEST(plugin_mp, skip_steps_over_ext_and_deep_nesting_without_recursion) {
    std::string ext("\x92\xd4\x01\x07\xc7\x02\x05xy", 9);  // [fixext1, ext8 of 2 bytes]
    tm_mp_reader r;
    tm_mp_reader_init(&r, ext.data(), ext.size());
    EXPECT_TRUE(tm_mp_skip(&r));
    EXPECT_TRUE(tm_mp_done(&r));
    std::string deep(200000, '\x91');
    deep.push_back('\x01');
    tm_mp_reader_init(&r, deep.data(), deep.size());
    EXPECT_TRUE(tm_mp_skip(&r));
    EXPECT_TRUE(tm_mp_done(&r));
    deep.pop_back();  // the innermost value is gone: refused, nothing moved
    tm_mp_reader_init(&r, deep.data(), deep.size());
    EXPECT_FALSE(tm_mp_skip(&r));
    EXPECT_EQ(r.pos, 0u);
}

TEST(plugin_mp, map_find_skips_non_string_keys_and_refuses_truncated_maps) {
    // {1: "a", "k": 2}
    std::string m(
        "\x82\x01\xa1"
        "a\xa1k\x02",
        7);
    tm_mp_reader r;
    tm_mp_reader v;
    int64_t i = 0;
    tm_mp_reader_init(&r, m.data(), m.size());
    ASSERT_TRUE(tm_mp_map_find(&r, "k", &v));
    EXPECT_TRUE(tm_mp_read_int(&v, &i));
    EXPECT_EQ(i, 2);
    EXPECT_FALSE(tm_mp_map_find(&r, "a", &v));  // "a" is a value, not a key
    for (std::size_t n = 0; n + 1 < m.size(); ++n) {
        tm_mp_reader_init(&r, m.data(), n);
        EXPECT_FALSE(tm_mp_map_find(&r, "k", &v) && tm_mp_read_int(&v, &i)) << n;
    }
}

// Every prefix and many single-byte mutations of valid messages: the C
// reader must never accept what is not there (ASan builds check the reads
// themselves), and must accept whatever the C++ reader accepts.
TEST(plugin_mp, truncated_and_mutated_inputs_are_safe) {
    std::string good = mp::pack(sample());
    std::string small = mp::pack(mp::value::map({{"a", mp::value::array({1, "x", 2.0, nullptr, true})}, {"b", -7}}));
    std::mt19937 rng(2026);
    int accepted = 0;
    auto check = [&](const std::string& bytes) {
        tm_mp_reader r;
        tm_mp_reader_init(&r, bytes.data(), bytes.size());
        tm_mp_reader found;
        (void)tm_mp_map_find(&r, "b", &found);
        bool skipped = tm_mp_skip(&r);
        EXPECT_LE(r.pos, bytes.size());
        auto cpp = mp::unpack(bytes);
        if (cpp) {
            EXPECT_TRUE(skipped && tm_mp_done(&r));
            auto c = read_c(bytes);
            ASSERT_TRUE(c.has_value());
            // NaN payloads compare unequal; compare the encodings instead.
            EXPECT_EQ(mp::pack(*c), mp::pack(*cpp));
            ++accepted;
        }
    };
    for (std::size_t n = 0; n < small.size(); ++n) check(small.substr(0, n));
    for (std::size_t n = 0; n < good.size(); n += 97) check(good.substr(0, n));
    for (int i = 0; i < 20000; ++i) {
        std::string bytes = small;
        int edits = 1 + static_cast<int>(rng() % 3);
        for (int e = 0; e < edits; ++e) bytes[rng() % bytes.size()] = static_cast<char>(rng() & 0xFF);
        if (rng() % 4 == 0) bytes.resize(rng() % bytes.size());
        check(bytes);
    }
    for (int i = 0; i < 5000; ++i) {
        std::string bytes(rng() % 24, '\0');
        for (auto& c : bytes) c = static_cast<char>(rng() & 0xFF);
        check(bytes);
    }
    EXPECT_GT(accepted, 0);
}

TEST(plugin_mp, fixed_buffer_overflow_is_reported_and_never_written_past) {
    std::string buf(16, '\x55');
    tm_mp_writer w;
    tm_mp_writer_init(&w, buf.data(), 8);
    tm_mp_write_array(&w, 3);
    tm_mp_write_int(&w, 1);
    tm_mp_write_str(&w, "more than eight bytes");
    tm_mp_write_int(&w, 2);
    EXPECT_FALSE(tm_mp_writer_ok(&w));
    EXPECT_LE(w.size, 8u);
    EXPECT_EQ(buf.substr(8), std::string(8, '\x55'));
}

TEST(plugin_mp, write_copy_forwards_a_value_unchanged) {
    std::string in = mp::pack(mp::value::map({{"keep", mp::value::array({1, "two"})}, {"drop", 3}}));
    tm_mp_reader r;
    tm_mp_reader keep;
    tm_mp_reader_init(&r, in.data(), in.size());
    ASSERT_TRUE(tm_mp_map_find(&r, "keep", &keep));
    tm_mp_writer w;
    tm_mp_writer_init_growable(&w);
    tm_mp_write_map(&w, 1);
    tm_mp_write_str(&w, "kept");
    ASSERT_TRUE(tm_mp_write_copy(&w, &keep));
    auto out = mp::unpack(std::string(reinterpret_cast<const char*>(w.data), w.size));
    tm_mp_writer_free(&w);
    ASSERT_TRUE(out.has_value());
    EXPECT_EQ((*out)["kept"], mp::value::array({1, "two"}));
}
