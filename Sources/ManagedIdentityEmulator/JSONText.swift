import Foundation

/// Minimal JSON writing with fields in a fixed order, as the services send them.
enum JSONText {
    static func object(_ fields: [(String, Any)]) -> String {
        "{" + fields.map { "\(string($0.0)):\(value($0.1))" }.joined(separator: ",") + "}"
    }

    static func value(_ value: Any) -> String {
        switch value {
        case let bool as Bool: bool ? "true" : "false"
        case let int as Int: String(int)
        case let fields as [(String, Any)]: object(fields)
        case let string as String: Self.string(string)
        case let ints as [Int]: "[" + ints.map(String.init).joined(separator: ",") + "]"
        case let strings as [String]: "[" + strings.map(Self.string).joined(separator: ",") + "]"
        default: "null"
        }
    }

    static func string(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 {
                    result += String(format: "\\u%04x", scalar.value)
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }
}
