import Foundation
import TokenCredentials

/// What the Azure CLI is asked and what its answer means: plain functions of text, tested without
/// running anything.
enum AzureCLIInvocation {
    /// The arguments of `az`, passed as an array (never through a shell).
    static func arguments(resource: String, tenantID: String?) -> [String] {
        var arguments = ["account", "get-access-token", "--output", "json", "--resource", resource]
        if let tenantID { arguments += ["--tenant", tenantID] }
        return arguments
    }

    /// The resource of the one scope of `context`, checked to hold only characters a resource URI
    /// has, so nothing in it can be read by the CLI as an option or by anything as a command.
    static func resource(of context: TokenRequestContext) throws(AzureCLICredentialError) -> String {
        guard context.scopes.count == 1, let scope = context.scopes.first else {
            throw AzureCLICredentialError(
                code: .invalidScope, message: "The Azure CLI gets a token for one scope; \(context.scopes.count) were asked for.")
        }
        let resource = scope.hasSuffix("/.default") ? String(scope.dropLast("/.default".count)) : scope
        guard !resource.isEmpty, !resource.hasPrefix("-"),
            resource.unicodeScalars.allSatisfy({ $0.isASCII && (Self.isAlphanumeric($0) || "-_.:/".unicodeScalars.contains($0)) })
        else {
            throw AzureCLICredentialError(
                code: .invalidScope,
                message: "The scope may hold only letters, digits and -_.:/ (such as https://vault.azure.net/.default).")
        }
        return resource
    }

    /// A tenant id checked to be a GUID or a domain name.
    static func validTenant(_ tenantID: String?) throws(AzureCLICredentialError) -> String? {
        guard let tenantID else { return nil }
        guard !tenantID.isEmpty, !tenantID.hasPrefix("-"),
            tenantID.unicodeScalars.allSatisfy({ $0.isASCII && (Self.isAlphanumeric($0) || "-.".unicodeScalars.contains($0)) })
        else {
            throw AzureCLICredentialError(code: .invalidTenant, message: "A tenant id holds only letters, digits, - and . (a GUID or a domain).")
        }
        return tenantID
    }

    /// The token in the CLI's standard output.
    /// - Parameter timeZone: the zone of the older `expiresOn` field, which the CLI writes in local time.
    static func token(fromOutput output: [UInt8], timeZone: TimeZone = .current) throws(AzureCLICredentialError) -> AccessTokenInfo {
        let unparseable = AzureCLICredentialError(
            code: .unparseableOutput,
            message: "The Azure CLI printed something that is not a token (\(output.count) bytes). "
                + "Run az account get-access-token yourself to see it; az upgrade may mend it.")
        guard let object = try? JSONSerialization.jsonObject(with: Data(output)) as? [String: Any],
            let token = object["accessToken"] as? String, !token.isEmpty
        else { throw unparseable }
        let expiresOn: Date
        if let seconds = object["expires_on"] as? Int {
            expiresOn = Date(timeIntervalSince1970: TimeInterval(seconds))
        } else if let text = object["expires_on"] as? String, let seconds = Int(text) {
            expiresOn = Date(timeIntervalSince1970: TimeInterval(seconds))
        } else if let text = object["expiresOn"] as? String, let date = localDate(text, timeZone: timeZone) {
            expiresOn = date
        } else {
            throw unparseable
        }
        return AccessTokenInfo(token: token, expiresOn: expiresOn, tokenType: object["tokenType"] as? String ?? "Bearer")
    }

    /// What a failed run means, from its exit status and standard error.
    static func failure(exitStatus: Int32, standardError: String) -> AzureCLICredentialError {
        let text = standardError.lowercased()
        if exitStatus == 127 || text.contains("command not found") || text.contains("no such file or directory") && text.contains("az") {
            return AzureCLICredentialError(
                code: .notInstalled, message: "The Azure CLI could not be started. Install it (https://aka.ms/azure-cli), then run az login.")
        }
        if text.contains("az login") || text.contains("az account set") {
            return AzureCLICredentialError(code: .notSignedIn, message: "The Azure CLI is not signed in. Run az login.")
        }
        let excerpt = excerpt(of: standardError)
        return AzureCLICredentialError(
            code: .failed,
            message: "The Azure CLI failed (exit status \(exitStatus))" + (excerpt.isEmpty ? "." : ": \(excerpt)"))
    }

    /// The first lines of the CLI's error, without anything shaped like a token or control characters.
    static func excerpt(of standardError: String) -> String {
        var text = standardError.trimmingCharacters(in: .whitespacesAndNewlines)
        while let range = text.range(of: #"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*"#, options: .regularExpression) {
            text.replaceSubrange(range, with: "<redacted>")
        }
        text = String(text.unicodeScalars.map { $0.properties.generalCategory == .control ? " " : Character($0) })
        return text.count > 400 ? String(text.prefix(400)) + "..." : text
    }

    /// The error for a claims challenge: the CLI cannot be asked for claims, but `az login` can.
    static func claimsChallenge(_ claims: String, scope: String) -> AzureCLICredentialError {
        let encoded = Data(claims.utf8).base64EncodedString()
        return AzureCLICredentialError(
            code: .claimsChallenge,
            message: "The resource asks for claims the Azure CLI's token lacks. Run az login --claims-challenge \"\(encoded)\" --scope \(scope), then try again.")
    }

    private static func localDate(_ text: String, timeZone: TimeZone) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = timeZone
        for format in ["yyyy-MM-dd HH:mm:ss.SSSSSS", "yyyy-MM-dd HH:mm:ss"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: text) { return date }
        }
        return nil
    }

    private static func isAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
    }
}
