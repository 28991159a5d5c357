#include "replication/image.hpp"

#include "replication/apply.hpp"
#include "replication/write_set.hpp"
#include "store/keys.hpp"

namespace taskmill::broker::replication {

result<std::string> read_image(transaction& txn) {
    auto index = applied_index(txn);
    if (!index) {
        return failure{index.error()};
    }
    write_set all;
    for (int i = 0; i < table_count; ++i) {
        const auto t = static_cast<table>(i);
        all.clear(t);
        auto rc = txn.scan(t, "", false, [&](std::string_view key, std::string_view value) {
            all.put(t, key, value);
            return true;
        });
        if (!rc) {
            return failure{rc.error()};
        }
    }
    std::string image;
    keys::put_u64(image, *index);
    image += all.take();
    return image;
}

result<uint64_t> image_index(std::string_view image) {
    if (image.size() < 8) {
        return fail(errc::corrupt, "store image of " + std::to_string(image.size()) + " bytes: too short");
    }
    return keys::get_u64(image);
}

result<bool> install_image(store& st, std::string_view image) {
    auto index = image_index(image);
    if (!index) {
        return failure{index.error()};
    }
    return apply_entry(st, *index, image.substr(8));
}

}  // namespace taskmill::broker::replication
