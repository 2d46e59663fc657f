// The Prometheus text exposition format, version 0.0.4: a HELP and a TYPE line per family,
// then its samples, `name{label="value",...} value`, one per line.
#include <fmt/format.h>

#include <cmath>

#include "observe/metrics.hpp"

namespace im::observe {

std::string escape_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

std::string escape_help(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

std::string format_value(double value) {
    if (std::isnan(value)) return "NaN";
    if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
    return fmt::format("{}", value);  // the shortest text that reads back as the same double
}

void TextExposition::family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += escape_help(help);
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
}

void TextExposition::start_sample(std::string_view name, std::initializer_list<Label> labels,
                                  const Label* extra) {
    out_ += name;
    if (labels.size() == 0 && !extra) {
        out_ += ' ';
        return;
    }
    char sep = '{';
    auto add = [&](const Label& l) {
        out_ += sep;
        out_ += l.name;
        out_ += "=\"";
        out_ += escape_label_value(l.value);
        out_ += '"';
        sep = ',';
    };
    for (const auto& l : labels) add(l);
    if (extra) add(*extra);
    out_ += "} ";
}

void TextExposition::sample(std::string_view name, std::initializer_list<Label> labels,
                            std::uint64_t value) {
    start_sample(name, labels);
    out_ += std::to_string(value);
    out_ += '\n';
}

void TextExposition::sample(std::string_view name, std::initializer_list<Label> labels,
                            double value) {
    start_sample(name, labels);
    out_ += format_value(value);
    out_ += '\n';
}

void TextExposition::histogram(std::string_view name, std::initializer_list<Label> labels,
                               std::span<const double> bounds,
                               std::span<const std::uint64_t> counts, double sum) {
    const std::string bucket = std::string(name) + "_bucket";
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < counts.size(); ++i) {
        total += counts[i];  // a bucket counts everything at or below its bound
        const std::string le = i < bounds.size() ? format_value(bounds[i]) : "+Inf";
        const Label le_label{"le", le};
        start_sample(bucket, labels, &le_label);
        out_ += std::to_string(total);
        out_ += '\n';
    }
    sample(std::string(name) + "_sum", labels, sum);
    sample(std::string(name) + "_count", labels, total);
}

}  // namespace im::observe
