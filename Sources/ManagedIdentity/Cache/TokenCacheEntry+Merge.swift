import Foundation

extension TokenCacheEntry {
    /// Applies a write to a stored partition: removes what the write removed, stores the written entry
    /// (unless the stored one is newer), drops expired entries, and evicts the entries closest to
    /// expiry beyond `cap`. Backends call it on the copy they read under their lock.
    public static func merge(
        stored: [TokenCacheEntry], notification: TokenCacheNotification, now: Date, cap: Int
    ) -> [TokenCacheEntry] {
        var byKey: [TokenCacheEntryKey: TokenCacheEntry] = [:]
        for entry in stored where entry.partitionKey == notification.partitionKey {
            byKey[entry.key] = entry
        }
        for key in notification.removedEntries where key != notification.writtenEntry?.key {
            byKey[key] = nil
        }
        if let written = notification.writtenEntry {
            if let existing = byKey[written.key], existing.cachedAt > written.cachedAt {
                // Another process stored a newer token meanwhile; keep it.
            } else {
                byKey[written.key] = written
            }
        }
        var merged = byKey.values.filter { $0.expiresOn > now }
        if merged.count > cap {
            merged.sort { $0.expiresOn > $1.expiresOn }
            merged.removeLast(merged.count - max(cap, 1))
        }
        return merged
    }
}
