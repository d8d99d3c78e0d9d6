// Untrusted input that used to crash or hang: JSON nested 100k deep, FIFOs where files are
// expected, safetensors headers whose sizes overflow, config values of the wrong type.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "aha/core/config.h"
#include "aha/core/error.h"
#include "aha/core/fileio.h"
#include "aha/core/safetensors.h"

namespace aha {
namespace {

namespace fs = std::filesystem;

std::string temp(const std::string& name) {
  return (fs::temp_directory_path() / ("aha_hostile_" + name + "_" + std::to_string(::getpid())))
      .string();
}

std::string nested(int depth, char open = '[', char close = ']') {
  return std::string(depth, open) + std::string(depth, close);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(HostileJson, DeepNestingIsRefusedNotACrash) {
  for (int depth : {kMaxJsonDepth + 1, 100000, 1000000}) {
    std::string why;
    EXPECT_FALSE(try_parse_json(nested(depth), &why).has_value());
    EXPECT_NE(why.find("nested deeper"), std::string::npos) << why;
    // Objects, and nesting hidden after a long flat prefix.
    std::string obj;
    for (int i = 0; i < depth; ++i) obj += "{\"a\":";
    obj += "1" + std::string(depth, '}');
    EXPECT_FALSE(try_parse_json(obj).has_value());
    EXPECT_FALSE(try_parse_json("[1, \"]]]\", " + nested(depth) + "]").has_value());
  }
  // Brackets inside strings do not count; escaped quotes do not end a string.
  EXPECT_TRUE(try_parse_json("{\"s\": \"" + std::string(100000, '[') + "\\\"]\"}").has_value());
  // At the limit: parses, and copies/dumps without trouble.
  auto ok = try_parse_json(nested(kMaxJsonDepth));
  ASSERT_TRUE(ok.has_value());
  Json copy = *ok;
  EXPECT_EQ(copy.dump().size(), size_t(2 * kMaxJsonDepth));
  const std::string file = temp("deep.json");
  std::ofstream(file) << nested(200000);
  EXPECT_NE(error_of([&] { load_json_file(file); }).find("nested deeper"), std::string::npos);
}

TEST(HostileJson, ErrorsDoNotEchoHugeValues) {
  std::string big = "\"" + std::string(4 << 20, 'x') + "\"";
  std::string why;
  EXPECT_FALSE(try_parse_json("{\"a\": " + big, &why).has_value());  // truncated: invalid
  EXPECT_LT(why.size(), 400u);
  Json j = {{"steps", std::string(1 << 20, 'y')}};
  StrictReader r(j, "grpo");
  const std::string e = error_of([&] { r.get<int>("steps", 1); });
  EXPECT_NE(e.find("grpo.steps"), std::string::npos) << e.substr(0, 200);
  EXPECT_LT(e.size(), 300u);
}

TEST(StrictTypes, IntegersAreIntegersAndBoolsAreBools) {
  Json j = {{"b", true}, {"f", 2.5}, {"big", 4294967295ULL}, {"neg", -3}, {"whole", 3.0},
            {"s", "7"}, {"i", 1}};
  StrictReader r(j, "data");
  EXPECT_NE(error_of([&] { r.get<int>("b", 0); }).find("data.b"), std::string::npos);
  EXPECT_NE(error_of([&] { r.get<int>("f", 0); }).find("expected an integer"), std::string::npos);
  EXPECT_NE(error_of([&] { r.get<int>("big", 0); }).find("from"), std::string::npos);
  EXPECT_NE(error_of([&] { r.get<uint32_t>("neg", 0); }).find("data.neg"), std::string::npos);
  EXPECT_NE(error_of([&] { r.get<bool>("i", false); }).find("true or false"), std::string::npos);
  EXPECT_NE(error_of([&] { r.get<double>("s", 0.0); }).find("a number"), std::string::npos);
  EXPECT_NE(error_of([&] { r.get<std::string>("i", ""); }).find("a string"), std::string::npos);
  EXPECT_EQ(r.get<int>("whole", 0), 3);
  EXPECT_EQ(r.get<int64_t>("big", 0), 4294967295LL);
  EXPECT_EQ(r.get<double>("i", 0.0), 1.0);
}

TEST(StrictTypes, UnknownKeysSuggestTheClosest) {
  Json j = {{"stpes", 3}};
  StrictReader r(j, "grpo");
  r.get<int>("steps", 1);
  r.get<double>("beta", 0.0);
  const std::string e = error_of([&] { r.finish(); });
  EXPECT_NE(e.find("did you mean 'steps'"), std::string::npos) << e;
  EXPECT_EQ(did_you_mean("zzzzzz", {"steps", "beta"}), "");
}

TEST(HostileFiles, AFifoIsAnErrorNotAHang) {
  const std::string dir = temp("fifo");
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string fifo = dir + "/model.safetensors";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_NE(error_of([&] { TensorArchive a(dir); }), "");
  EXPECT_NE(error_of([&] { MappedFile m(fifo); }).find("not a regular file"), std::string::npos);
  EXPECT_NE(error_of([&] { read_file(fifo); }).find("not a regular file"), std::string::npos);
  EXPECT_NE(error_of([&] { load_json_file(fifo); }), "");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
  fs::remove_all(dir);
}

// A safetensors file whose header claims a shape so large that numel * dtype size wraps.
TEST(HostileFiles, SafetensorsSizeOverflowIsCaught) {
  const std::string dir = temp("st");
  fs::remove_all(dir);
  fs::create_directories(dir);
  // 2^62 elements of F32: numel * 4 wraps to 0 in 64 bits, matching an empty byte range.
  const std::string header =
      R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})";
  std::string file(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(file.data(), &n, 8);
  file += header;
  std::ofstream(dir + "/model.safetensors", std::ios::binary) << file;
  EXPECT_NE(error_of([&] { TensorArchive a(dir); }).find("does not match shape"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace aha
