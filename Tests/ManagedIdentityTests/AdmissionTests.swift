import ManagedIdentityTesting
import Synchronization
import Testing

@testable import ManagedIdentity

/// The admission point's decisions as values (who starts, when the next may), and its driver:
/// order, cancellation, the wait's bound, and that a fake transport is not paced unless asked.
struct AdmissionTests {
    @Test func atMostTheConcurrentLimitStartsAndAFinishLetsTheNextOneIn() {
        var queue = AdmissionQueue(limits: AdmissionLimits(maximumConcurrentRequests: 2))
        for ticket in 1...4 { queue.enqueue(UInt64(ticket)) }
        let admitted1 = queue.admit(now: 0).tickets
        #expect(admitted1 == [1, 2])
        let admitted2 = queue.admit(now: 0).tickets
        #expect(admitted2 == [])
        queue.finish()
        let admitted3 = queue.admit(now: 0).tickets
        #expect(admitted3 == [3])
        #expect(queue.position(of: 4) == 0)
    }

    @Test func theRateBoundsStartsInAnyWindowAndSaysWhenTheNextMayStart() {
        var queue = AdmissionQueue(limits: AdmissionLimits(maximumConcurrentRequests: 100, maximumRequestsPerSecond: 3))
        for ticket in 1...5 { queue.enqueue(UInt64(ticket)) }
        let first = queue.admit(now: 10)
        #expect(first.tickets == [1, 2, 3])
        #expect(first.nextStart == 10 + AdmissionQueue.rateWindow)
        let admitted4 = queue.admit(now: 10.5).tickets
        #expect(admitted4 == [])
        let later = queue.admit(now: 10 + AdmissionQueue.rateWindow)
        #expect(later.tickets == [4, 5])
    }

    @Test func aWaiterThatLeavesIsSkippedAndOrderIsKept() {
        var queue = AdmissionQueue(limits: AdmissionLimits(maximumConcurrentRequests: 1))
        for ticket in 1...3 { queue.enqueue(UInt64(ticket)) }
        let admitted5 = queue.admit(now: 0).tickets
        #expect(admitted5 == [1])
        let removed = queue.remove(2)
        let removedAgain = queue.remove(2)
        #expect(removed && !removedAgain)
        queue.finish()
        let admitted6 = queue.admit(now: 0).tickets
        #expect(admitted6 == [3])
    }

    @Test func theDriverLetsFiveOfTwentyRunAtOnceAndEveryOneEventually() async throws {
        let admission = EndpointAdmission(origin: "http://test", limits: AdmissionLimits(maximumConcurrentRequests: 5))
        final class Running: Sendable { let state = Mutex((now: 0, peak: 0)) }
        let running = Running()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    try await admission.acquire()
                    running.state.withLock { $0.now += 1; $0.peak = max($0.peak, $0.now) }
                    await Task.yield()
                    running.state.withLock { $0.now -= 1 }
                    admission.release()
                }
            }
            try await group.waitForAll()
        }
        let (now, peak) = running.state.withLock { ($0.now, $0.peak) }
        #expect(peak <= 5)
        #expect(now == 0)
    }

    @Test func aCancelledWaiterLeavesAndTheNextOneGetsItsTurn() async throws {
        let admission = EndpointAdmission(origin: "http://test", limits: AdmissionLimits(maximumConcurrentRequests: 1))
        try await admission.acquire()
        let waiting = Task { _ = try await admission.acquire() }
        let next = Task { _ = try await admission.acquire() }
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        admission.release()
        try await next.value
        admission.release()
    }

    @Test func aWaitPastTheBoundFailsWithATimeoutThatSaysWhy() async throws {
        let admission = EndpointAdmission(
            origin: "http://169.254.169.254", limits: AdmissionLimits(maximumConcurrentRequests: 1, maximumWait: .milliseconds(50)))
        try await admission.acquire()
        await #expect {
            try await admission.acquire()
        } throws: { error in
            let error = error as? ManagedIdentityError
            return error?.code == .requestTimeout && error?.message.contains("waited") == true
                && error?.message.contains("1 at once") == true
        }
        admission.release()
    }

    @Test func aFakeTransportIsNotPacedButLimitsSetInTheConfigurationBindIt() throws {
        let endpoint = FakeTokenEndpoint(hostName: "h", clock: ManualClock())
        let unpaced = try ManagedIdentityClient(
            configuration: .init(environment: ManagedIdentityEnvironment(variables: [:]), hostDiscriminator: "h"),
            cache: TokenCache(), transport: endpoint)
        let paced = try ManagedIdentityClient(
            configuration: .init(environment: ManagedIdentityEnvironment(variables: [:]), admissionLimits: .imds, hostDiscriminator: "h"),
            cache: TokenCache(), transport: endpoint)
        let real = try ManagedIdentityClient(
            configuration: .init(environment: ManagedIdentityEnvironment(variables: [:]), hostDiscriminator: "h"),
            cache: TokenCache())
        #expect(unpaced.admission.limits == .unlimited)
        #expect(paced.admission.limits == .imds)
        #expect(real.admission.limits == .imds)
        #expect(paced.admission === real.admission, "one admission point per endpoint and limits")
    }

    @Test func retryDelaysAreJitteredUpwardWithinHalfTheirLength() {
        #expect(RetryPolicy.jittered(.seconds(10), random: 0) == .seconds(10))
        #expect(RetryPolicy.jittered(.seconds(10), random: 0.5) == .milliseconds(12_500))
        #expect(RetryPolicy.jittered(.seconds(10), random: 1) == .seconds(15))
        // IMDS's 410 rule: seven retries of at least 10 s keep its 70 s.
        let total = (0..<7).reduce(Duration.zero) { sum, _ in sum + RetryPolicy.jittered(.seconds(10), random: 0) }
        #expect(total >= .seconds(70))
    }
}
