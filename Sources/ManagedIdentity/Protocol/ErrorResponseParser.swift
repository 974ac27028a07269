import Foundation

/// Builds the message of a failed request from the endpoint's error body, recognising every body
/// shape the sources send (flat `message`/`correlationId`, OAuth `error`/`error_description`, nested
/// `{"error":{"code","message"}}`), as MSAL.NET does.
enum ErrorResponseParser {
    static let noResponseMessage =
        "[Managed Identity] Authentication unavailable. No response received from the managed identity endpoint."

    /// The longest part of a body quoted in a message: bodies come from outside and can be huge.
    static let maximumQuotedBody = 1_024

    struct Parsed: Equatable {
        var message: String
        var correlationID: String?
    }

    static func parse(_ body: [UInt8], source: ManagedIdentitySource) -> Parsed {
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            return Parsed(message: noResponseMessage)
        }
        if let json = JSONValue.parse(body), let object = json.objectValue {
            if let parsed = parseFlat(object, source: source) ?? parseNested(object, source: source) {
                return parsed
            }
        }
        return Parsed(
            message: "[Managed Identity] The error response was either empty or could not be parsed. "
                + "Error response received from the server: \(quote(body)).")
    }

    /// `{message, correlationId, error, error_description}` with `error` a string.
    private static func parseFlat(_ object: [String: JSONValue], source: ManagedIdentitySource) -> Parsed? {
        if let error = object["error"], error.stringValue == nil, error != .null { return nil }
        let error = object["error"]?.textValue
        let message = object["message"]?.textValue
        let description = object["error_description"]?.textValue
        let correlationID = object["correlationId"]?.textValue ?? object["correlation_id"]?.textValue
        guard error != nil || message != nil || description != nil || correlationID != nil else { return nil }
        var text = "[Managed Identity] "
        if let error { text += "Error Code: \(clip(error)) " }
        if let message { text += "Error Message: \(clip(message)) " }
        if let description { text += "Error Description: \(clip(description)) " }
        if let correlationID {
            text += "Managed Identity Correlation ID: \(clip(correlationID)) (issued by the '\(source.msalName)' "
                + "managed identity source; search that source's telemetry with this correlation ID). "
                + "Use this Correlation ID for further investigation."
        }
        return Parsed(message: String(text.trimmingASCIIWhitespace()), correlationID: correlationID)
    }

    /// `{"error":{"code","message","correlationId"}}` (Cloud Shell, Service Fabric, ARM).
    private static func parseNested(_ object: [String: JSONValue], source: ManagedIdentitySource) -> Parsed? {
        guard let error = object["error"]?.objectValue else { return nil }
        let code = error["code"]?.textValue
        let message = error["message"]?.textValue
        guard code != nil || message != nil else { return nil }
        let correlationID = error["correlationId"]?.textValue
        var text = "[Managed Identity] "
        if let code { text += "Error Code: \(clip(code)) " }
        if let message { text += "Error Message: \(clip(message)) " }
        if let correlationID {
            text += "Managed Identity Correlation ID: \(clip(correlationID)) (issued by the '\(source.msalName)' "
                + "managed identity source)."
        }
        return Parsed(message: String(text.trimmingASCIIWhitespace()), correlationID: correlationID)
    }

    static func quote(_ body: [UInt8]) -> String {
        let text = String(decoding: body.prefix(maximumQuotedBody), as: UTF8.self)
        return clip(text) + (body.count > maximumQuotedBody ? "..." : "")
    }

    /// Replaces control characters so a hostile body cannot forge log lines or terminal escapes.
    private static func clip(_ text: String) -> String {
        let limited = text.count > maximumQuotedBody ? String(text.prefix(maximumQuotedBody)) + "..." : text
        return String(String.UnicodeScalarView(limited.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : $0 }))
    }
}

extension String {
    /// Replaces every occurrence of each secret with a marker; secrets are never shorter than 1 character.
    func redacting(_ secrets: [String]) -> String {
        var result = self
        for secret in secrets where !secret.isEmpty {
            result = result.replacingOccurrences(of: secret, with: "<redacted>")
        }
        return result
    }

    func replacingOccurrences(of target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var remaining = self[...]
        while let range = remaining.range(of: target) {
            result += remaining[..<range.lowerBound]
            result += replacement
            remaining = remaining[range.upperBound...]
        }
        result += remaining
        return result
    }
}
