// Audit reports: JSON (schema dfmon.audit/1, docs/interfaces.md) and a self-contained HTML page.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dfm/models/models.h"
#include "dfm/pipeline/audit.h"

namespace dfm {

// The whole report for a run. `version` is dfmon's version string.
nlohmann::json audit_report_json(const std::vector<InputReport>& inputs, const ModelSet& models,
                                 const AuditOptions& options, const std::string& version);

// Self-contained HTML (inline CSS and SVG, thumbnails as data: URIs; no network needed to view it):
// a summary table, then per input its verdict, a score-over-time plot per track with the alert
// threshold and alert spans shaded, and the highest-scoring crop of each track. Every string taken
// from the input (file names, errors) is HTML-escaped.
std::string audit_report_html(const nlohmann::json& report, const std::vector<InputReport>& inputs);

// HTML-escapes & < > " '.
std::string html_escape(const std::string& s);

}  // namespace dfm
