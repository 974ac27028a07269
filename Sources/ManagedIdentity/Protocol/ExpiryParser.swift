/// Parses the expiry values endpoints send, the same on every machine whatever its locale or time zone.
///
/// `expires_on` may be epoch seconds (as a number or a string; values below 978307200, i.e. before
/// 2001, are relative seconds as in MSAL.NET), ISO 8601 (`2024-10-18T19:51:37.0000000+00:00`), or the
/// US date strings of App Service's 2017 API (`11/26/2026 5:34:16 PM +00:00`). A date without an offset
/// is read as UTC, as MSAL Go does: the host's time zone must not move a token's expiry.
enum ExpiryParser {
    /// 2001-01-01T00:00:00Z: integers below it are lifetimes, not instants (MSAL.NET).
    static let relativeThreshold: Int64 = 978_307_200

    enum Value: Sendable, Equatable {
        case number(Double)
        case string(String)
    }

    /// The instant a value designates, in seconds since 1970.
    /// - Returns: `nil` when the value is in no known format.
    static func expiresOn(_ value: Value, now: Double) -> Double? {
        switch value {
        case .number(let number):
            guard number.isFinite, number.rounded(.down) == number, abs(number) < 1e15 else { return nil }
            return instant(fromInteger: Int64(number), now: now)
        case .string(let raw):
            let text = raw.trimmingASCIIWhitespace()
            if text.isEmpty { return now }
            if let integer = Int64(text) { return instant(fromInteger: integer, now: now) }
            if let date = parseISO8601(text) ?? parseUSDate(text) { return date }
            return nil
        }
    }

    /// A relative number of seconds (`expires_in`, `refresh_in`), as a number or a string.
    static func seconds(_ value: Value) -> Int64? {
        switch value {
        case .number(let number):
            guard number.isFinite, abs(number) < 1e15 else { return nil }
            return Int64(number.rounded(.down))
        case .string(let raw):
            return Int64(raw.trimmingASCIIWhitespace())
        }
    }

    private static func instant(fromInteger value: Int64, now: Double) -> Double {
        value < relativeThreshold ? now + Double(value) : Double(value)
    }

    // MARK: ISO 8601: yyyy-MM-dd[T| ]HH:mm:ss[.fraction][Z|±HH:mm|±HHmm]

    static func parseISO8601(_ text: Substring) -> Double? {
        var scanner = Scanner(text)
        guard let year = scanner.integer(digits: 4...4), scanner.take("-"),
            let month = scanner.integer(digits: 2...2), scanner.take("-"),
            let day = scanner.integer(digits: 2...2),
            scanner.take("T") || scanner.take("t") || scanner.take(" "),
            let hour = scanner.integer(digits: 2...2), scanner.take(":"),
            let minute = scanner.integer(digits: 2...2), scanner.take(":"),
            let second = scanner.integer(digits: 2...2)
        else { return nil }
        var fraction = 0.0
        if scanner.take(".") || scanner.take(",") {
            guard let digits = scanner.digits(maximum: 9), !digits.isEmpty else { return nil }
            fraction = Double("0." + digits) ?? 0
        }
        guard let offset = scanner.offset(allowZ: true) else { return nil }
        guard scanner.isAtEnd else { return nil }
        guard let base = epochSeconds(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        else { return nil }
        return base + fraction - Double(offset)
    }

    // MARK: US dates: M/d/yyyy h:m:s [AM|PM] [±HH:mm]

    static func parseUSDate(_ text: Substring) -> Double? {
        var scanner = Scanner(text)
        guard let month = scanner.integer(digits: 1...2), scanner.take("/"),
            let day = scanner.integer(digits: 1...2), scanner.take("/"),
            let year = scanner.integer(digits: 4...4), scanner.skipSpaces(),
            var hour = scanner.integer(digits: 1...2), scanner.take(":"),
            let minute = scanner.integer(digits: 1...2), scanner.take(":"),
            let second = scanner.integer(digits: 1...2)
        else { return nil }
        var fraction = 0.0
        if scanner.take(".") {
            guard let digits = scanner.digits(maximum: 9), !digits.isEmpty else { return nil }
            fraction = Double("0." + digits) ?? 0
        }
        let hadSpace = scanner.skipSpaces()
        if hadSpace, let meridiem = scanner.meridiem() {
            guard (1...12).contains(hour) else { return nil }
            if meridiem == .am { hour = hour == 12 ? 0 : hour } else { hour = hour == 12 ? 12 : hour + 12 }
            scanner.skipSpaces()
        }
        let offset: Int
        if scanner.isAtEnd {
            offset = 0
        } else {
            guard let parsed = scanner.offset(allowZ: true), scanner.isAtEnd else { return nil }
            offset = parsed
        }
        guard let base = epochSeconds(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        else { return nil }
        return base + fraction - Double(offset)
    }

    /// Seconds since 1970 of a UTC civil time, or `nil` when a field is out of range.
    static func epochSeconds(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) -> Double? {
        guard (1...12).contains(month), (0...23).contains(hour), (0...59).contains(minute), (0...59).contains(second)
        else { return nil }
        let daysInMonth = [31, isLeap(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard day >= 1, day <= daysInMonth[month - 1] else { return nil }
        // Days from 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return Double(days * 86_400 + hour * 3_600 + minute * 60 + second)
    }

    private static func isLeap(_ year: Int) -> Bool {
        (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
    }

    private enum Meridiem { case am, pm }

    /// A minimal cursor over ASCII text.
    private struct Scanner {
        var remaining: Substring.UTF8View

        init(_ text: Substring) { remaining = text.utf8 }

        var isAtEnd: Bool { remaining.isEmpty }

        mutating func take(_ character: Character) -> Bool {
            guard let ascii = character.asciiValue, remaining.first == ascii else { return false }
            remaining = remaining.dropFirst()
            return true
        }

        @discardableResult
        mutating func skipSpaces() -> Bool {
            var skipped = false
            while remaining.first == UInt8(ascii: " ") {
                remaining = remaining.dropFirst()
                skipped = true
            }
            return skipped
        }

        mutating func digits(maximum: Int) -> String? {
            var result = ""
            while let byte = remaining.first, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
                // Fractions longer than the maximum are accepted; the extra digits carry no meaning here.
                if result.count < maximum { result.unicodeScalars.append(Unicode.Scalar(byte)) }
                remaining = remaining.dropFirst()
            }
            return result
        }

        mutating func integer(digits range: ClosedRange<Int>, followedByDigit: Bool = false) -> Int? {
            var value = 0
            var count = 0
            while let byte = remaining.first, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte),
                count < range.upperBound
            {
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
                count += 1
                remaining = remaining.dropFirst()
            }
            guard range.contains(count) else { return nil }
            if !followedByDigit, let next = remaining.first, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(next) {
                return nil
            }
            return value
        }

        mutating func meridiem() -> Meridiem? {
            let bytes = Array(remaining.prefix(2)).map { $0 | 0x20 }
            guard bytes.count == 2, bytes[1] == UInt8(ascii: "m") else { return nil }
            let result: Meridiem
            switch bytes[0] {
            case UInt8(ascii: "a"): result = .am
            case UInt8(ascii: "p"): result = .pm
            default: return nil
            }
            remaining = remaining.dropFirst(2)
            return result
        }

        /// `Z`, `±HH:mm`, `±HHmm` or `±HH`, in seconds east of UTC; 0 at the end of the text.
        mutating func offset(allowZ: Bool) -> Int? {
            if remaining.isEmpty { return 0 }
            if allowZ, take("Z") || take("z") { return 0 }
            let sign: Int
            if take("+") {
                sign = 1
            } else if take("-") {
                sign = -1
            } else {
                return nil
            }
            guard let hours = integer(digits: 2...2, followedByDigit: true), hours <= 23 else { return nil }
            var minutes = 0
            if take(":") {
                guard let value = integer(digits: 2...2) else { return nil }
                minutes = value
            } else if !remaining.isEmpty {
                guard let value = integer(digits: 2...2) else { return nil }
                minutes = value
            }
            guard minutes <= 59 else { return nil }
            return sign * (hours * 3_600 + minutes * 60)
        }
    }
}
