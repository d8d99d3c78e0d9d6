// safetensors round trips, sharding and strict rejection of malformed files.
#include "aha/core/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "aha/core/error.h"

namespace aha {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("aha_st_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

void write_raw(const fs::path& path, const std::string& header, size_t data_bytes) {
  std::ofstream out(path, std::ios::binary);
  uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header;
  out << std::string(data_bytes, '\0');
}

TEST(Safetensors, RoundTripAllDtypes) {
  fs::path dir = temp_dir("rt");
  std::vector<float> a = {1.0f, -2.5f, 3.25f, 1e-3f, 65504.0f, -0.0f};
  std::vector<double> b = {0.1, 0.2, 0.3};
  std::vector<TensorToWrite> ts = {
      {"a32", {2, 3}, a.data(), DType::kF32, DType::kF32},
      {"a16", {6}, a.data(), DType::kF32, DType::kF16},
      {"abf", {3, 2}, a.data(), DType::kF32, DType::kBF16},
      {"b64", {3}, b.data(), DType::kF64, DType::kF32},
  };
  write_safetensors((dir / "x.safetensors").string(), ts, {{"format", "pt"}});
  TensorArchive ar((dir / "x.safetensors").string());
  std::vector<float> out(6);
  ar.read<float>("a32", {2, 3}, out.data());
  EXPECT_EQ(out, a);
  ar.read<float>("a16", {6}, out.data());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(out[i], a[i], std::abs(a[i]) * 1e-3 + 1e-6);
  ar.read<float>("abf", {3, 2}, out.data());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(out[i], a[i], std::abs(a[i]) * 8e-3 + 1e-6);
  std::vector<double> ob(3);
  ar.read<double>("b64", {3}, ob.data());
  EXPECT_FLOAT_EQ(static_cast<float>(ob[1]), 0.2f);
  EXPECT_THROW(ar.read<float>("a32", {3, 2}, out.data()), Error);
  EXPECT_THROW(ar.info("nope"), Error);
}

TEST(Safetensors, HalfPrecisionConversions) {
  EXPECT_EQ(float_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(float_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(float_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_f16(1e6f), 0x7c00);
  EXPECT_EQ(f16_to_float(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
  // 1 + 2^-8 is a tie between bf16 neighbours: round to even (1.0).
  EXPECT_EQ(float_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  for (int i = 0; i < 65536; ++i) {
    uint16_t h = static_cast<uint16_t>(i);
    float f = f16_to_float(h);
    if (std::isnan(f)) continue;
    EXPECT_EQ(float_to_f16(f), h) << i;
  }
}

TEST(Safetensors, ShardedCheckpoint) {
  fs::path dir = temp_dir("shard");
  std::vector<float> a(100, 1.0f), b(100, 2.0f), c(100, 3.0f);
  std::vector<TensorToWrite> ts = {{"a", {100}, a.data()}, {"b", {10, 10}, b.data()},
                                   {"c", {100}, c.data()}};
  write_checkpoint_tensors(dir.string(), ts, 500);
  EXPECT_TRUE(fs::exists(dir / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(dir / "model.safetensors"));
  TensorArchive ar(dir.string());
  EXPECT_EQ(ar.names().size(), 3u);
  std::vector<float> out(100);
  ar.read<float>("c", {100}, out.data());
  EXPECT_EQ(out[7], 3.0f);
  // Re-writing unsharded replaces the shards.
  write_checkpoint_tensors(dir.string(), ts, 0);
  EXPECT_FALSE(fs::exists(dir / "model.safetensors.index.json"));
  TensorArchive ar2(dir.string());
  ar2.read<float>("b", {10, 10}, out.data());
  EXPECT_EQ(out[99], 2.0f);
}

TEST(Safetensors, RejectsMalformedFiles) {
  fs::path dir = temp_dir("bad");
  auto expect_error = [&](const std::string& header, size_t data, const std::string& needle) {
    fs::path p = dir / "bad.safetensors";
    write_raw(p, header, data);
    try {
      SafetensorsFile f(p.string());
      ADD_FAILURE() << "accepted: " << header;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error("{", 0, "not valid JSON");
  expect_error("[]", 0, "not a JSON object");
  expect_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4, "outside");
  expect_error(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8, "does not match");
  expect_error(R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", 8, "unsupported dtype");
  expect_error(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8, "negative");
  expect_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
               R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
               12, "overlap");
  expect_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 16, "cover");
  expect_error(R"({"a":{"dtype":"F32","shape":[2]}})", 8, "data_offsets");
  // Header length beyond the file.
  {
    fs::path p = dir / "trunc.safetensors";
    std::ofstream out(p, std::ios::binary);
    uint64_t n = 1000;
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << "{}";
    out.close();
    EXPECT_THROW(SafetensorsFile(p.string()), Error);
  }
  {
    fs::path p = dir / "tiny.safetensors";
    std::ofstream(p, std::ios::binary) << "abc";
    EXPECT_THROW(SafetensorsFile(p.string()), Error);
  }
  EXPECT_THROW(SafetensorsFile((dir / "missing.safetensors").string()), Error);
  EXPECT_THROW(TensorArchive(dir.string()), Error);
}

}  // namespace
}  // namespace aha
