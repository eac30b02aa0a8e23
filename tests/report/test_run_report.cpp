// Run reports: the numbers behind each figure, checked against a numpy reference
// (tests/fixtures/report_fixtures.py writes report_reference.safetensors), what the
// report reads from a run folder, the run table, and the files it writes.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/tensor/factory.h"
#include "report/compare_report.h"
#include "report/predictions.h"
#include "report/run_report.h"
#include "report/sample_run.h"
#include "test_util.h"

using namespace kiln;
using namespace kiln::report;
using namespace kiln::test;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

size_t count_of(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

std::vector<double> doubles(const SafeTensors& f, const std::string& name) {
  return f.tensors.at(name).to(DType::f64).to_vector();
}
std::vector<int64_t> ints(const SafeTensors& f, const std::string& name) {
  const Tensor& t = f.tensors.at(name);
  return std::vector<int64_t>(t.data<int64_t>(), t.data<int64_t>() + t.numel());
}

const ReportFigure& figure_named(const std::vector<ReportFigure>& figures, const std::string& name) {
  for (const ReportFigure& f : figures)
    if (f.name == name) return f;
  FAIL("no figure named " << name);
  return figures.front();
}

std::vector<TextPrimitive> texts_of(const Figure& figure) {
  std::vector<TextPrimitive> out;
  for (const Primitive& p : figure.primitives())
    if (const auto* t = std::get_if<TextPrimitive>(&p)) out.push_back(*t);
  return out;
}

}  // namespace

TEST_CASE("report: confusion matrix, per-class metrics, ROC points and AUC match the numpy reference") {
  const SafeTensors f = test::load_fixture("report_reference.safetensors");
  const std::vector<int64_t> labels = ints(f, "labels");
  const TempDir dir_temp("report-reference");
  const std::string dir = dir_temp.str();
  write_sample_run(dir);
  const data::Dataset test_set = indexed_dataset(labels);
  const RunReportInputs inputs = make_run_report_inputs(dir, test_set, f.tensors.at("logits"), "best.safetensors", 6);
  REQUIRE(inputs.test.has_value());
  const metrics::ClassificationReport& t = *inputs.test;

  // Confusion matrix counts, and the same counts written in the figure's cells (the
  // middle-anchored numbers, row by row).
  const std::vector<int64_t> confusion = ints(f, "confusion");
  std::vector<int64_t> ours;
  for (const auto& row : t.confusion_matrix) ours.insert(ours.end(), row.begin(), row.end());
  CHECK(ours == confusion);
  const std::vector<ReportFigure> figures = run_report_figures(inputs);
  std::vector<int64_t> written;
  for (const TextPrimitive& text : texts_of(figure_named(figures, "confusion_matrix").figure))
    if (text.style.anchor == TextAnchor::middle && !text.style.bold && !text.text.empty() &&
        text.text.find_first_not_of("0123456789") == std::string::npos)
      written.push_back(std::stoll(text.text));
  CHECK(written == confusion);

  const std::vector<double> per_class = doubles(f, "per_class");
  for (size_t k = 0; k < 4; ++k) {
    INFO("class " << k);
    CHECK(t.per_class[k].precision == doctest::Approx(per_class[k * 3 + 0]).epsilon(1e-12));
    CHECK(t.per_class[k].recall == doctest::Approx(per_class[k * 3 + 1]).epsilon(1e-12));
    CHECK(t.per_class[k].f1 == doctest::Approx(per_class[k * 3 + 2]).epsilon(1e-12));
  }

  // ROC series: every point and the AUC; the legend of the ROC figure shows the AUCs.
  const std::vector<RocSeries> roc = roc_series(t);
  const std::vector<double> auc = doubles(f, "auc");
  REQUIRE(roc.size() == 4);
  const std::vector<TextPrimitive> roc_texts = texts_of(figure_named(figures, "roc").figure);
  for (size_t k = 0; k < 4; ++k) {
    INFO("class " << k);
    CHECK(roc[k].label == "c" + std::to_string(k));
    const std::vector<double> fpr = doubles(f, "roc_fpr_" + std::to_string(k));
    const std::vector<double> tpr = doubles(f, "roc_tpr_" + std::to_string(k));
    CHECK(test::max_abs_diff(roc[k].fpr, fpr) < 1e-12);
    CHECK(test::max_abs_diff(roc[k].tpr, tpr) < 1e-12);
    CHECK(roc[k].auc == doctest::Approx(auc[k]).epsilon(1e-12));
    const std::string legend = roc_legend_label(roc[k]);
    CHECK(std::any_of(roc_texts.begin(), roc_texts.end(), [&](const TextPrimitive& p) { return p.text == legend; }));
  }
  // The tied rows (50..59 repeat 0..9) make curves with fewer points than N + 1.
  CHECK(roc[0].fpr.size() < labels.size() + 1);

  // The thumbnails: the reference's picks, in order, each captioned with its classes.
  const std::vector<int64_t> correct = ints(f, "correct_picks"), wrong = ints(f, "wrong_picks");
  const std::vector<double> probabilities = doubles(f, "probabilities");
  REQUIRE(inputs.correct.size() == correct.size());
  REQUIRE(inputs.wrong.size() == wrong.size());
  for (size_t i = 0; i < correct.size(); ++i) {
    CHECK(inputs.correct[i].image.at(0, 0).r == correct[i]);  // the red channel is the image's index
    CHECK(inputs.correct[i].captions[0].text == "true: c" + std::to_string(labels[correct[i]]));
  }
  for (size_t i = 0; i < wrong.size(); ++i) {
    const int64_t index = wrong[i];
    CHECK(inputs.wrong[i].image.at(3, 3).r == index);
    const auto row = probabilities.begin() + index * 4;
    const int64_t predicted = std::max_element(row, row + 4) - row;
    char expected[64];
    std::snprintf(expected, sizeof(expected), "pred: c%lld %.2f", static_cast<long long>(predicted), row[predicted]);
    CHECK(inputs.wrong[i].captions[1].text == expected);
    CHECK(inputs.wrong[i].captions[1].color.r == caption_red.r);
  }
}

TEST_CASE("report: reading a run folder: epochs, best epoch per monitor, time, memory, run_info") {
  const TempDir dir_temp("report-folder");
  const std::string dir = dir_temp.str();
  write_sample_run(dir);
  RunRecord run = read_run_folder(dir);
  CHECK(run.name == std::filesystem::path(dir).filename().string());
  REQUIRE(run.epochs.size() == 3);
  CHECK(run.epochs[1].epoch == 2);
  CHECK(run.epochs[1].lr == doctest::Approx(0.0005));
  CHECK(run.epochs[1].val_f1 == doctest::Approx(0.68));
  CHECK(run.training_seconds() == doctest::Approx(31.0));
  CHECK(run.peak_memory_mb() == doctest::Approx(350.4));
  REQUIRE(run.info.has_value());
  CHECK(run.info->parameters == 1234567);
  CHECK(run.info->train_images_per_epoch == 960);
  CHECK(run.has_validation());
  CHECK(!run.test_metrics.has_value());
  // Epochs 2 and 3 tie on val accuracy: the first one is best (the trainer's strict >).
  CHECK(run.best_epoch_index() == 1);
  run.config["monitor"] = "val_loss";
  CHECK(run.best_epoch_index() == 2);
  run.config["monitor"] = "val_f1";
  CHECK(run.best_epoch_index() == 1);
  run.info->val_images = 0;  // no validation: the last epoch's checkpoint is the one evaluated
  CHECK(run.best_epoch_index() == 2);

  // A resumed run keeps the first command and start time.
  RunInfo resumed = sample_info();
  resumed.command = "kiln train --resume x/last.safetensors";
  resumed.started = "later";
  write_run_info(dir, resumed, true);
  const RunInfo merged = read_run_folder(dir).info.value();
  CHECK(merged.command == sample_info().command);
  CHECK(merged.started == "2026-11-23 12:00:00");
  CHECK(merged.resume_commands == std::vector<std::string>{"kiln train --resume x/last.safetensors"});

  std::filesystem::remove(dir + "/epochs.jsonl");
  test::expect_error_containing([&] { read_run_folder(dir); }, {"epochs.jsonl"});
  test::expect_error_containing([&] { read_run_folder(dir + "/missing"); }, {"missing", "not a folder"});
}

TEST_CASE("report: the run table names sizes, online augmentation, memory and the best epoch's metrics") {
  const TempDir dir_temp("report-table");
  const std::string dir = dir_temp.str();
  write_sample_run(dir);
  RunReportInputs inputs;
  inputs.run = read_run_folder(dir);
  auto value_of = [&](const std::string& name) {
    for (const auto& [key, value] : run_table(inputs))
      if (key == name) return value;
    return std::string("(missing row " + name + ")");
  };
  CHECK(value_of("Model") == "cnn5: 5 blocks");
  CHECK(value_of("Parameters") == "1,234,567 total, 1,200,000 trainable");
  CHECK(value_of("Batch size") == "64");
  CHECK(value_of("Epochs").find("best epoch 2 by val_accuracy") != std::string::npos);
  CHECK(value_of("Device") == "CPU: Test CPU (2 threads) (cpu)");
  CHECK(value_of("Memory").find("CPU run: host peak 350 MiB of 16,384 MiB") == 0);
  CHECK(value_of("Training time").find("31.0 s for 3 epochs") == 0);
  const std::string train = value_of("Training set");
  CHECK(train.find("1,000 images; 960 images per epoch (the last partial batch is dropped)") == 0);
  CHECK(train.find("augmentation applied online") != std::string::npos);
  CHECK(train.find("crop:0.35-1,hflip:0.5") != std::string::npos);
  CHECK(value_of("Validation set").find("200 images") == 0);
  CHECK(value_of("Training accuracy").find("60.00% (epoch 2)") == 0);
  CHECK(value_of("Validation accuracy") == "70.00% (epoch 2)");
  CHECK(value_of("Validation F1 (macro)") == "0.6800 (epoch 2)");

  // A GPU run says GPU memory, peak used of total.
  inputs.run.info->device = "cuda:0";
  inputs.run.info->device_name = "NVIDIA H100 80GB HBM3";
  inputs.run.info->device_memory_mb = 81559;
  CHECK(value_of("GPU memory").find("peak 350 MiB used of 81,559 MiB") == 0);

  // The CPU threads and the feature cache's decision, when recorded (and through run_info.json).
  CHECK(value_of("Feature cache") == "(missing row Feature cache)");
  inputs.run.info->cpu_threads = 2;
  inputs.run.info->feature_cache = "off: --augment hflip:0.5 changes the images every epoch";
  inputs.run.info = RunInfo::from_json(inputs.run.info->to_json());
  CHECK(value_of("Device") == "NVIDIA H100 80GB HBM3 (cuda:0), 2 CPU threads");
  CHECK(value_of("Feature cache") == "off: --augment hflip:0.5 changes the images every epoch");

  // The curves behind the three epoch figures.
  const TrainingCurves curves = training_curves(inputs.run);
  REQUIRE(curves.loss.size() == 2);
  CHECK(curves.loss[0].x == std::vector<double>{1, 2, 3});
  CHECK(curves.loss[0].y == std::vector<double>{1.5, 1.0, 0.8});
  CHECK(curves.loss[1].y == std::vector<double>{1.2, 0.9, 0.85});
  CHECK(curves.loss[1].dashed);
  REQUIRE(curves.accuracy.size() == 3);
  CHECK(curves.accuracy[2].y == std::vector<double>{0.45, 0.68, 0.66});
  CHECK(curves.lr[0].y == std::vector<double>{0.001, 0.0005, 0.0001});
}

TEST_CASE("report: report.html is self-contained, has every section and writes its figures as PNG") {
  const SafeTensors f = test::load_fixture("report_reference.safetensors");
  const TempDir dir_temp("report-html");
  const std::string dir = dir_temp.str();
  write_sample_run(dir);
  const data::Dataset test_set = indexed_dataset(ints(f, "labels"));
  const std::string path = write_report_for_run(dir, test_set, f.tensors.at("logits"), "best.safetensors");
  CHECK(path == dir + "/report.html");
  const std::string html = read_text(path);
  for (const char* id : {"summary", "curves", "confusion", "roc", "per-class", "predictions", "reproduce"})
    CHECK_MESSAGE(html.find(std::string("<section id=\"") + id + "\"") != std::string::npos, id);
  CHECK(count_of(html, "<figure class=\"figure") == 8);  // loss, accuracy, lr, confusion, ROC, per-class, 2 grids
  CHECK(count_of(html, "<svg ") == 6);
  // Thumbnails: 34 of the 60 images are right, 26 wrong; at most 30 of each are shown.
  CHECK(count_of(html, "<img ") == 30 + 26);
  CHECK(count_of(html, "src=\"data:image/png;base64,") == 30 + 26);
  CHECK(html.find("src=\"http") == std::string::npos);  // nothing fetched from a network
  CHECK(html.find("href=\"http") == std::string::npos);
  CHECK(html.find("<link") == std::string::npos);
  CHECK(html.find("crop:0.35-1,hflip:0.5") != std::string::npos);
  CHECK(html.find("kiln train data/flowers --epochs 3 --augment &apos;crop:0.35-1,hflip:0.5&apos;") != std::string::npos);
  CHECK(html.find("macro average") != std::string::npos);
  CHECK(html.find("data-figures-loaded") != std::string::npos);
  for (const char* name : {"loss", "accuracy", "lr", "confusion_matrix", "roc", "per_class", "correct_predictions",
                           "wrong_predictions"}) {
    const std::string png = dir + "/figures/" + name + ".png";
    CHECK_MESSAGE(std::filesystem::exists(png), png);
    if (std::filesystem::exists(png)) CHECK(std::filesystem::file_size(png) > 500);
  }

  // Without a test set: the logs' parts only.
  const TempDir bare_dir_temp("report-html-bare");
  const std::string bare_dir = bare_dir_temp.str();
  write_sample_run(bare_dir);
  const std::string bare = read_text(write_report_for_run(bare_dir, data::Dataset{}, Tensor{}, ""));
  CHECK(bare.find("<section id=\"curves\"") != std::string::npos);
  CHECK(bare.find("<section id=\"roc\"") == std::string::npos);
  CHECK(count_of(bare, "<figure class=\"figure") == 3);
}

TEST_CASE("report: comparing runs overlays their curves and tabulates their metrics") {
  const TempDir a_temp("report-compare-a"), b_temp("report-compare-b"), out_temp("report-compare-out");
  const std::string a = a_temp.str(), b = b_temp.str();
  write_sample_run(a);
  write_sample_run(b, "val_loss");
  write_text(b + "/test_metrics.json", R"({"accuracy": 0.75, "macro_avg": {"f1": 0.7, "auc": null}})");
  const std::vector<RunRecord> runs{read_run_folder(a), read_run_folder(b)};
  const ComparisonCurves curves = comparison_curves(runs);
  REQUIRE(curves.accuracy.size() == 2);
  CHECK(curves.accuracy[1].label == std::filesystem::path(b).filename().string());
  CHECK(curves.accuracy[1].y == std::vector<double>{0.5, 0.7, 0.7});
  CHECK(curves.loss.size() == 4);  // train and val of each
  CHECK(curves.accuracy[0].color->r != curves.accuracy[1].color->r);

  const auto rows = comparison_table(runs);
  const auto header = comparison_table_header();
  REQUIRE(rows.size() == 2);
  auto cell = [&](size_t run, const std::string& column) {
    return rows[run][static_cast<size_t>(std::find(header.begin(), header.end(), column) - header.begin())];
  };
  CHECK(cell(0, "parameters") == "1,234,567");
  CHECK(cell(0, "val accuracy") == "0.7000");  // best epoch 2 by val_accuracy
  CHECK(cell(1, "val accuracy") == "0.7000");  // best epoch 3 by val_loss
  CHECK(cell(1, "val F1") == "0.6600");
  CHECK(cell(0, "test accuracy") == "n/a");
  CHECK(cell(1, "test accuracy") == "0.7500");
  CHECK(cell(1, "test AUC") == "n/a");
  CHECK(cell(0, "training time") == "31.0 s");

  const std::string out = out_temp / "compare.html";
  const std::string figures = write_compare_report(out, runs);
  const std::string html = read_text(out);
  CHECK(count_of(html, "<tr>") >= 4);
  CHECK(count_of(html, "<svg ") == 4);  // accuracy, loss, lr, test metrics
  for (const char* name : {"accuracy", "loss", "lr", "test_metrics"})
    CHECK(std::filesystem::exists(figures + "/" + name + ".png"));
}

TEST_CASE("report: shell quoting, counts, durations and HTML escaping") {
  const char* argv[] = {"kiln", "train", "my data", "--augment", "crop:0.35-1,hflip:0.5", "it's"};
  CHECK(shell_quote_command(6, argv) == "kiln train 'my data' --augment crop:0.35-1,hflip:0.5 'it'\\''s'");
  CHECK(format_count(0) == "0");
  CHECK(format_count(999) == "999");
  CHECK(format_count(11689512) == "11,689,512");
  CHECK(format_count(-1000) == "-1,000");
  CHECK(format_seconds(12.34) == "12.3 s");
  CHECK(format_seconds(245) == "4m 05s");
  CHECK(format_seconds(3723) == "1h 02m 03s");
  CHECK(html_escape("<a href=\"x\">'&'</a>") == "&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;");
  const std::string table = table_html({"k", "v"}, {{"<b>", "1"}}, "kv");
  CHECK(table.find("<th>&lt;b&gt;</th><td>1</td>") != std::string::npos);
}

TEST_CASE("report: prediction picks reject mismatched shapes and labels") {
  test::expect_error_containing([] { pick_predictions({0.5, 0.5, 1.0}, {0, 1}, 2, 3); }, {"(N, K) = (2, 2)"});
  test::expect_error_containing([] { pick_predictions({0.5, 0.5}, {2}, 2, 3); }, {"label 2"});
  // Correct ones round robin: class 0 has three, class 1 one.
  const PredictionPicks p = pick_predictions({.9, .1, .8, .2, .3, .7, .6, .4, .4, .6}, {0, 0, 1, 0, 0}, 2, 3);
  REQUIRE(p.correct.size() == 3);
  CHECK(p.correct[0].index == 0);
  CHECK(p.correct[1].index == 2);
  CHECK(p.correct[2].index == 1);
  REQUIRE(p.wrong.size() == 1);
  CHECK(p.wrong[0].index == 4);
  CHECK(p.wrong[0].predicted == 1);
  CHECK(p.wrong[0].probability == doctest::Approx(0.6));
}

TEST_CASE("report: thumbnails keep small images and shrink large ones to 192 px") {
  data::Dataset d;
  d.images = zeros(Shape{2, 1, 200, 300}, TensorOptions{DType::u8});
  d.images.data<uint8_t>()[200 * 300 + 5] = 255;  // image 1, pixel (5, 0): grey images become RGB
  d.labels = zeros(Shape{2}, TensorOptions{DType::i64});
  d.class_names = {"a", "b"};
  const RgbImage full = dataset_image(d, 1);
  CHECK(full.width == 300);
  CHECK(full.height == 200);
  CHECK(full.at(5, 0).r == 255);
  CHECK(full.at(5, 0).b == 255);
  CHECK(full.at(6, 0).g == 0);
  const std::vector<CaptionedImage> thumbs = captioned_predictions(d, {Prediction{1, 1, 0, 0.75}}, d.class_names);
  REQUIRE(thumbs.size() == 1);
  CHECK(thumbs[0].image.width == 192);
  CHECK(thumbs[0].image.height == 128);
  CHECK(thumbs[0].captions[0].text == "true: b");
  CHECK(thumbs[0].captions[1].text == "pred: a 0.75");
  CHECK(thumbs[0].captions[1].color.r == caption_red.r);
  test::expect_error_containing([&] { dataset_image(d, 2); }, {"image 2", "2 images"});
}
