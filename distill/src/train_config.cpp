// Strict parsing of the `aha distill train` config and the built-in dense student configs.
#include "aha/core/error.h"
#include "aha/distill/train.h"
#include "aha/policy/esft.h"

namespace aha::distill {

KdConfig KdConfig::from_json(const Json& j) {
  StrictReader r(j, "kd");
  KdConfig k;
  k.weight = r.get<double>("weight", k.weight);
  k.sft_weight = r.get<double>("sft_weight", k.sft_weight);
  k.source = r.get<std::string>("source", k.source);
  k.direction = r.get<std::string>("direction", k.direction);
  k.top_k = r.get<int>("top_k", k.top_k);
  k.tail = r.get<bool>("tail", k.tail);
  k.on_policy = r.get<bool>("on_policy", k.on_policy);
  k.prompts_per_step = r.get<int>("prompts_per_step", k.prompts_per_step);
  Json sampling = r.child("sampling");
  r.finish();
  k.sampling = rollout::SamplingParams::from_json(sampling);
  if (k.weight < 0 || k.sft_weight < 0) fail("kd.weight and kd.sft_weight must be >= 0");
  if (k.source != "stored" && k.source != "online") fail("kd.source must be stored or online");
  if (k.direction != "forward" && k.direction != "reverse") {
    fail("kd.direction must be forward or reverse");
  }
  if (k.top_k < 1 || k.prompts_per_step < 1) fail("kd.top_k and kd.prompts_per_step must be >= 1");
  if (k.on_policy && k.source != "online") fail("kd.on_policy needs kd.source online");
  if (k.on_policy && k.weight <= 0) fail("kd.on_policy needs kd.weight > 0");
  return k;
}

EsftConfig EsftConfig::from_json(const Json& j) {
  StrictReader r(j, "esft");
  EsftConfig e;
  e.enabled = r.get<bool>("enabled", e.enabled);
  e.share = r.get<double>("share", e.share);
  e.include_shared = r.get<bool>("include_shared", e.include_shared);
  e.metric = r.get<std::string>("metric", e.metric);
  e.score_batches = r.get<int>("score_batches", e.score_batches);
  r.finish();
  policy::parse_esft_metric(e.metric);
  if (!(e.share > 0 && e.share <= 1)) fail("esft.share must be in (0, 1]");
  if (e.score_batches < 1) fail("esft.score_batches must be >= 1");
  return e;
}

DistillConfig DistillConfig::from_json(const Json& j) {
  StrictReader r(j, "config");
  DistillConfig c;
  c.student = r.get<std::string>("student", "");
  c.student_config = r.get<Json>("student_config", Json());
  c.tokenizer = r.get<std::string>("tokenizer", "");
  c.teacher = r.get<std::string>("teacher", "");
  c.output_dir = r.require<std::string>("output_dir");
  if (c.output_dir.empty()) fail("output_dir must not be empty");
  c.seed = r.get<uint64_t>("seed", 0);
  c.data = r.child("data");
  c.steps = r.get<int>("steps", c.steps);
  c.batch_tokens = r.get<int64_t>("batch_tokens", c.batch_tokens);
  c.save_every = r.get<int>("save_every", c.save_every);
  c.threads = r.get<int>("threads", c.threads);
  c.max_nan_skips = r.get<int>("max_nan_skips", c.max_nan_skips);
  c.init_std = r.get<double>("init_std", c.init_std);
  c.mtp_weight = r.get<double>("mtp_weight", c.mtp_weight);
  c.kd = KdConfig::from_json(r.child("kd"));
  c.esft = EsftConfig::from_json(r.child("esft"));
  Json opt = r.child("optimizer");
  Json sched = r.child("schedule");
  c.lora = policy::LoraConfig::from_json(r.child("lora"));
  if (c.lora.base_model.empty()) c.lora.base_model = c.student;
  c.parallel = train::ParallelConfig::from_json(r.child("parallel"));
  r.finish();
  if (c.lora.on() && c.student.empty()) fail("lora needs a student checkpoint to adapt");
  if (c.lora.on() && c.esft.enabled) fail("lora and esft both choose what trains: use one");
  c.optimizer = policy::OptimizerConfig::from_json(opt);
  if (!sched.contains("total_steps")) sched["total_steps"] = c.steps;
  c.schedule = policy::LrSchedule::from_json(sched);
  StrictReader d(c.data, "data");
  if (!d.has("train")) fail("data.train is required (an SFT JSONL from aha distill sample)");
  d.get<std::string>("train", "");
  d.get<int64_t>("limit", 0);
  d.finish();
  if (c.student.empty() == c.student_config.is_null()) {
    fail(
        "exactly one of student (a checkpoint) and student_config (llama, qwen2, a config.json) "
        "is required");
  }
  if (c.steps < 1 || c.batch_tokens < 1) fail("steps and batch_tokens must be >= 1");
  if (!(c.mtp_weight >= 0) || !std::isfinite(c.mtp_weight)) fail("mtp_weight must be >= 0");
  if (c.save_every < 0 || c.max_nan_skips < 0) fail("save_every and max_nan_skips must be >= 0");
  const bool needs_teacher = c.kd.weight > 0 && c.kd.source == "online";
  if (needs_teacher && c.teacher.empty()) fail("kd.source online needs a teacher");
  if (c.student.empty() && c.tokenizer.empty() && c.teacher.empty()) {
    fail("a new student needs a tokenizer (or a teacher to take it from)");
  }
  return c;
}

// Small Llama / Qwen2 students (~0.3M parameters plus embeddings): the demo's scale.
Json student_preset(const std::string& name, int vocab_size) {
  Json j = {{"vocab_size", vocab_size},        {"hidden_size", 128},
            {"num_hidden_layers", 4},          {"num_attention_heads", 4},
            {"num_key_value_heads", 2},        {"intermediate_size", 352},
            {"max_position_embeddings", 2048}, {"rms_norm_eps", 1e-6},
            {"rope_theta", 10000.0},           {"tie_word_embeddings", false}};
  if (name == "llama") {
    j["model_type"] = "llama";
    j["architectures"] = {"LlamaForCausalLM"};
  } else if (name == "qwen2") {
    j["model_type"] = "qwen2";
    j["architectures"] = {"Qwen2ForCausalLM"};
    j["attention_bias"] = true;
    j["rope_theta"] = 1000000.0;
  } else {
    fail("student_config: unknown student '", name, "' (llama, qwen2, or a config.json path)");
  }
  return j;
}

}  // namespace aha::distill
