// Bounded log of recent alert events for the dashboard, and the EventBus sink that fills it.
#include <algorithm>

#include "dfm/web/dashboard.h"

namespace dfm::web {

AlertLog::AlertLog(size_t capacity) : capacity_(std::max<size_t>(capacity, 1)) {}

void AlertLog::add(const std::string& event_json) {
  std::lock_guard<std::mutex> lock(mu_);
  events_.push_back(event_json);
  while (events_.size() > capacity_) events_.pop_front();
}

std::string AlertLog::json() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out = "{\"events\":[";
  bool first = true;
  for (const auto& e : events_) {  // each entry is already one serialised event object
    if (!first) out += ',';
    out += e;
    first = false;
  }
  out += "]}";
  return out;
}

size_t AlertLog::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_.size();
}

namespace {

class AlertLogSink : public server::EventSink {
 public:
  explicit AlertLogSink(std::shared_ptr<AlertLog> log)
      : EventSink("dashboard-log", filter()), log_(std::move(log)) {}

 private:
  static server::EventFilter filter() {
    server::EventFilter f;
    f.types = server::EventFilter::bit(EventType::kAlertStart) | server::EventFilter::bit(EventType::kAlertEnd);
    return f;
  }
  Status do_publish(const Event&, const std::string& json) override {
    log_->add(json);
    note_sent();
    return Status::Ok();
  }
  std::shared_ptr<AlertLog> log_;
};

}  // namespace

std::unique_ptr<server::EventSink> make_alert_log_sink(std::shared_ptr<AlertLog> log) {
  return std::make_unique<AlertLogSink>(std::move(log));
}

}  // namespace dfm::web
