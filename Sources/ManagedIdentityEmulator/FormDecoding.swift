import Foundation

/// `application/x-www-form-urlencoded` bodies.
enum FormDecoding {
    static func decode(_ body: String) -> [(name: String, value: String)]? {
        var items: [(name: String, value: String)] = []
        for pair in body.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = decodeComponent(parts[0]), let value = decodeComponent(parts.count > 1 ? parts[1] : "") else {
                return nil
            }
            items.append((name, value))
        }
        return items
    }

    static func decodeComponent(_ text: Substring) -> String? {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }
}
