// Dashboard page provider: whitelisted assets with their content types, thumbnails, and 404 for
// everything else (traversal attempts, encoded variants, wrong tokens); the thumbnail store's bound.
#include "dfm/web/dashboard.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <thread>

#include "dfm/server/event_bus.h"

namespace dfm::web {
namespace {

cv::Mat face(int side, uchar shade) {
  return cv::Mat(side, side, CV_8UC3, cv::Scalar(shade, 40, 200));
}

std::string body_of(const PageProvider& p, const std::string& path) {
  auto page = p(path);
  return page ? page->body : std::string();
}

TEST(Dashboard, ServesTheEmbeddedAssetsWithTheirTypes) {
  PageProvider p = make_dashboard({});
  auto index = p("/");
  ASSERT_TRUE(index);
  EXPECT_EQ(index->content_type, "text/html; charset=utf-8");
  EXPECT_NE(index->body.find("<script src=\"app.js\"></script>"), std::string::npos);
  EXPECT_NE(index->body.find("href=\"style.css\""), std::string::npos);
  EXPECT_EQ(body_of(p, "/index.html"), index->body);
  auto js = p("/app.js");
  ASSERT_TRUE(js);
  EXPECT_EQ(js->content_type, "text/javascript; charset=utf-8");
  EXPECT_NE(js->body.find("new WebSocket("), std::string::npos);
  auto css = p("/style.css");
  ASSERT_TRUE(css);
  EXPECT_EQ(css->content_type, "text/css; charset=utf-8");
  EXPECT_NE(css->body.find("svg.spark"), std::string::npos);
}

// The page must work offline and must never turn event strings into markup.
TEST(Dashboard, AssetsLoadNothingExternalAndNeverRenderHtml) {
  PageProvider p = make_dashboard({});
  for (const char* path : {"/", "/app.js", "/style.css"}) {
    const std::string body = body_of(p, path);
    ASSERT_FALSE(body.empty()) << path;
    for (const char* bad : {"http://", "https://", "//cdn", "@import"}) {
      // The SVG namespace URI is an identifier, not a fetch.
      std::string b = body;
      for (size_t at; (at = b.find("http://www.w3.org/2000/svg")) != std::string::npos;) b.erase(at, 26);
      EXPECT_EQ(b.find(bad), std::string::npos) << path << " contains " << bad;
    }
  }
  const std::string js = body_of(p, "/app.js");
  for (const char* sink : {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"}) {
    EXPECT_EQ(js.find(sink), std::string::npos) << "app.js uses " << sink;
  }
  EXPECT_NE(body_of(p, "/").find("Content-Security-Policy"), std::string::npos);
}

TEST(Dashboard, EverythingElseIs404) {
  auto store = std::make_shared<ThumbnailStore>(8);
  ASSERT_TRUE(store->put("cam-1", 7, face(224, 10)));
  PageProvider p = make_dashboard({"", store});
  ASSERT_TRUE(p("/thumb/cam-1/7.jpg"));  // the control: the same store does serve this one
  for (const char* path : {"",
                           "/nope",
                           "/app.js/",
                           "//app.js",
                           "/APP.JS",
                           "/app.js.map",
                           "/style.css/..",
                           "/index.html/",
                           "/assets/app.js",
                           "/web/assets/app.js",
                           "/healthz.js",
                           "/favicon.ico",
                           "/../etc/passwd",
                           "/%2e%2e/etc/passwd",
                           "/..%2fetc%2fpasswd",
                           "/./app.js",
                           "/app.js%00",
                           "/thumb",
                           "/thumb/",
                           "/thumb/../x",
                           "/thumb/../../etc/passwd",
                           "/thumb/cam-1/../7.jpg",
                           "/thumb/%2e%2e/x",
                           "/thumb/cam-1/..%2f7.jpg",
                           "/thumb/cam%2d1/7.jpg",
                           "/thumb/cam-1/%37.jpg",
                           "/thumb/./7.jpg",
                           "/thumb/../7.jpg",
                           "/thumb//7.jpg",
                           "/thumb/cam-1/7.jpg/",
                           "/thumb/cam-1/7.jpg/x",
                           "/thumb/cam-1//7.jpg",
                           "/thumb/cam-1/7.png",
                           "/thumb/cam-1/7.JPG",
                           "/thumb/cam-1/7",
                           "/thumb/cam-1/07.jpg",
                           "/thumb/cam-1/+7.jpg",
                           "/thumb/cam-1/-7.jpg",
                           "/thumb/cam-1/ 7.jpg",
                           "/thumb/cam-1/.jpg",
                           "/thumb/cam-1/9999999999.jpg",
                           "/thumb/cam-2/7.jpg",
                           "/thumb/cam-1/8.jpg",
                           "/thumb/x/cam-1/7.jpg",
                           "/thumb/<script>/7.jpg",
                           "/thumb/cam 1/7.jpg",
                           "/thumb/cam\\1/7.jpg",
                           "/THUMB/cam-1/7.jpg",
                           "/thumb/cam-1/7.jpg?x",
                           "thumb/cam-1/7.jpg"}) {
    EXPECT_FALSE(p(path)) << "served " << path;
  }
  std::string long_id(65, 'a');
  ASSERT_TRUE(store->put(long_id, 1, face(32, 1)));
  EXPECT_FALSE(p("/thumb/" + long_id + "/1.jpg"));  // longer than any valid stream id
}

TEST(Dashboard, ServesThumbnailsAsJpeg) {
  auto store = std::make_shared<ThumbnailStore>(8, 160);
  ASSERT_TRUE(store->put("a.b_c-D9", 123456789, face(224, 90)));
  PageProvider p = make_dashboard({"", store});
  auto page = p("/thumb/a.b_c-D9/123456789.jpg");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->content_type, "image/jpeg");
  cv::Mat img = cv::imdecode(std::vector<uchar>(page->body.begin(), page->body.end()), cv::IMREAD_COLOR);
  ASSERT_FALSE(img.empty());
  EXPECT_EQ(img.cols, 160);  // scaled down to max_side
  EXPECT_EQ(img.rows, 160);
  EXPECT_NEAR(img.at<cv::Vec3b>(80, 80)[0], 90, 6);                   // the crop's pixels, not some placeholder
  EXPECT_FALSE(make_dashboard({})("/thumb/a.b_c-D9/123456789.jpg"));  // no store, no thumbnails
}

TEST(Dashboard, TokenProtectsThumbnails) {
  const std::string token = "s3cr/et?&%+x";
  auto store = std::make_shared<ThumbnailStore>(8);
  ASSERT_TRUE(store->put("cam-1", 3, face(64, 50)));
  PageProvider p = make_dashboard({token, store});
  // What the page builds with encodeURIComponent(token).
  EXPECT_TRUE(p("/thumb/s3cr%2Fet%3F%26%25%2Bx/cam-1/3.jpg"));
  EXPECT_TRUE(p("/thumb/s3cr%2fet%3f%26%25%2bx/cam-1/3.jpg"));
  EXPECT_FALSE(p("/thumb/cam-1/3.jpg"));                         // without the token
  EXPECT_FALSE(p("/thumb/s3cr%2Fet%3F%26%25%2By/cam-1/3.jpg"));  // wrong token
  EXPECT_FALSE(p("/thumb/s3cr%2Fet%3F%26%25%2B/cam-1/3.jpg"));   // a prefix of it
  EXPECT_FALSE(p("/thumb/%/cam-1/3.jpg"));                       // malformed escape
  EXPECT_FALSE(p("/thumb/s3cr%2Fet%3F%26%25%2Bx/../cam-1/3.jpg"));
  EXPECT_FALSE(p("/thumb/s3cr%2Fet%3F%26%25%2Bx/cam-1/3.jpg/x"));
  EXPECT_TRUE(p("/"));  // the page itself carries no data; it reads the token from its own URL
  EXPECT_TRUE(p("/app.js"));
}

// The alert log behind /recent: only alert events, oldest first, the newest `capacity` kept.
TEST(AlertLog, KeepsTheLastAlertEventsFromTheBus) {
  auto log = std::make_shared<AlertLog>(3);
  server::EventBus bus;
  bus.add_sink(make_alert_log_sink(log));
  for (int i = 0; i < 5; ++i) {
    Event e;
    e.type = i % 2 ? EventType::kAlertEnd : EventType::kAlertStart;
    e.stream = "cam-" + std::to_string(i);
    e.track = i;
    bus.publish(e);
    Event score;
    score.type = EventType::kScore;
    score.stream = "cam-x";
    bus.publish(score);
    Event state;
    state.type = EventType::kStreamState;
    state.stream = "cam-x";
    bus.publish(state);
  }
  bus.flush();
  ASSERT_EQ(log->size(), 3u);
  const auto j = nlohmann::json::parse(log->json());
  ASSERT_EQ(j["events"].size(), 3u);
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(j["events"][k]["stream"], "cam-" + std::to_string(k + 2));  // oldest first, the first two gone
    EXPECT_EQ(j["events"][k]["type"], k % 2 ? "alert_end" : "alert_start");
    EXPECT_TRUE(j["events"][k].contains("seq"));
  }
  EXPECT_EQ(nlohmann::json::parse(AlertLog(5).json()), nlohmann::json::parse(R"({"events":[]})"));
}

TEST(Dashboard, RecentAlertsAsJsonBehindTheToken) {
  auto log = std::make_shared<AlertLog>(8);
  log->add(R"({"type":"alert_start","stream":"cam-1","track":3,"seq":7})");
  PageProvider open = make_dashboard({"", nullptr, log});
  auto page = open("/recent");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->content_type, "application/json");
  EXPECT_EQ(nlohmann::json::parse(page->body)["events"][0]["seq"], 7);
  for (const char* path : {"/recent/", "/recent/x", "/recentx", "/recent.json", "/recent/../recent"}) {
    EXPECT_FALSE(open(path)) << path;
  }
  EXPECT_FALSE(make_dashboard({})("/recent"));  // no log, no route
  const std::string token = "s3cret/&?";
  PageProvider locked = make_dashboard({token, nullptr, log});
  EXPECT_FALSE(locked("/recent"));
  EXPECT_FALSE(locked("/recent/wrong"));
  EXPECT_FALSE(locked("/recent/s3cret"));
  EXPECT_FALSE(locked("/recent/s3cret%2F%26%3F/x"));
  auto ok = locked("/recent/s3cret%2F%26%3F");
  ASSERT_TRUE(ok);
  EXPECT_EQ(nlohmann::json::parse(ok->body)["events"].size(), 1u);
}

TEST(ThumbnailStore, EvictsTheLeastRecentlyUsed) {
  ThumbnailStore store(3);
  EXPECT_EQ(store.capacity(), 3u);
  for (int t = 1; t <= 3; ++t) ASSERT_TRUE(store.put("s", t, face(48, static_cast<uchar>(t * 40))));
  EXPECT_TRUE(store.get("s", 1));  // 1 is now the most recently used; 2 is the oldest
  ASSERT_TRUE(store.put("s", 4, face(48, 200)));
  EXPECT_EQ(store.size(), 3u);
  EXPECT_TRUE(store.get("s", 1));
  EXPECT_FALSE(store.get("s", 2));
  EXPECT_TRUE(store.get("s", 3));
  EXPECT_TRUE(store.get("s", 4));
  // Same key: replaced in place, no growth; the new crop is served.
  ASSERT_TRUE(store.put("s", 4, face(48, 10)));
  EXPECT_EQ(store.size(), 3u);
  std::string jpeg = *store.get("s", 4);
  cv::Mat img = cv::imdecode(std::vector<uchar>(jpeg.begin(), jpeg.end()), cv::IMREAD_COLOR);
  ASSERT_FALSE(img.empty());
  EXPECT_NEAR(img.at<cv::Vec3b>(24, 24)[0], 10, 6);
  // Same track number on another stream is another thumbnail.
  ASSERT_TRUE(store.put("t", 4, face(48, 100)));
  EXPECT_TRUE(store.get("t", 4));
  EXPECT_TRUE(store.get("s", 4));
}

TEST(ThumbnailStore, RefusesWhatItCannotEncode) {
  ThumbnailStore store(4);
  EXPECT_FALSE(store.put("s", 1, cv::Mat()));
  EXPECT_FALSE(store.put("s", 2, cv::Mat(8, 8, CV_8UC2, cv::Scalar(1, 2))));
  EXPECT_EQ(store.size(), 0u);
  EXPECT_TRUE(store.put("s", 3, cv::Mat(8, 8, CV_8UC1, cv::Scalar(7))));  // grey crops are fine
}

// put() from the inference worker while the server thread reads: no race, the bound holds.
TEST(ThumbnailStore, ConcurrentPutAndGetStayBounded) {
  auto store = std::make_shared<ThumbnailStore>(16);
  PageProvider p = make_dashboard({"", store});
  std::thread writer([&] {
    for (int t = 0; t < 400; ++t) store->put("cam", t, face(32, static_cast<uchar>(t)));
  });
  for (int i = 0; i < 2000; ++i) {
    p("/thumb/cam/" + std::to_string(i % 400) + ".jpg");
    EXPECT_LE(store->size(), 16u);
  }
  writer.join();
  EXPECT_EQ(store->size(), 16u);
  EXPECT_TRUE(p("/thumb/cam/399.jpg"));  // the newest put is never the one evicted
}

}  // namespace
}  // namespace dfm::web
