import Foundation

/// The date texts of TV-12, in UTC.
enum DateText {
    static func components(_ epoch: Int) -> DateComponents {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? TimeZone.current
        return calendar.dateComponents(
            [.year, .month, .day, .hour, .minute, .second], from: Date(timeIntervalSince1970: Double(epoch)))
    }

    static func iso8601(_ epoch: Int) -> String {
        let c = components(epoch)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.0000000+00:00", c.year ?? 0, c.month ?? 0, c.day ?? 0, c.hour ?? 0,
            c.minute ?? 0, c.second ?? 0)
    }

    static func usDate(_ epoch: Int, meridiem: Bool) -> String {
        let c = components(epoch)
        let hour = c.hour ?? 0
        if meridiem {
            let twelve = hour % 12 == 0 ? 12 : hour % 12
            return String(
                format: "%d/%d/%04d %d:%02d:%02d", c.month ?? 0, c.day ?? 0, c.year ?? 0, twelve, c.minute ?? 0,
                c.second ?? 0) + (hour < 12 ? " AM" : " PM") + " +00:00"
        }
        return String(
            format: "%02d/%02d/%04d %02d:%02d:%02d +00:00", c.month ?? 0, c.day ?? 0, c.year ?? 0, hour, c.minute ?? 0,
            c.second ?? 0)
    }
}
