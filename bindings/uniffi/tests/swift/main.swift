// The Swift bindings end to end on Linux (bindings/uniffi/test.sh compiles this together with
// the generated Bertling.swift and runs it): every answer is checked against the Rust runtime's
// own (files written by examples/reference.rs) or against a hand computation.
//
//   ./bindingtest FIXTURES

import Foundation

var passed = 0
var failed = 0

struct Failure: Error, CustomStringConvertible {
    let description: String
}

func check(_ name: String, _ body: () throws -> Void) {
    do {
        try body()
        passed += 1
        print("ok   \(name)")
    } catch {
        failed += 1
        print("FAIL \(name): \(error)")
    }
}

func ensure(_ cond: Bool, _ what: @autoclosure () -> String) throws {
    if !cond { throw Failure(description: what()) }
}

/// Runs `body`, which must throw a `BertlingError` that `matches` accepts.
func expectError(_ kind: String, _ matches: (BertlingError) -> Bool, _ body: () throws -> Void) throws -> BertlingError {
    do {
        try body()
    } catch let e as BertlingError {
        if matches(e) { return e }
        throw Failure(description: "expected \(kind), got \(e)")
    } catch {
        throw Failure(description: "expected \(kind), got \(error)")
    }
    throw Failure(description: "expected \(kind), nothing was thrown")
}

func rows(_ path: String) throws -> [[Substring]] {
    try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { $0.split(separator: " ") }
}

func maxDiff(_ a: [[Float]], _ b: [[Float]]) throws -> Float {
    try ensure(a.count == b.count, "\(a.count) vectors, expected \(b.count)")
    var worst: Float = 0
    for (x, y) in zip(a, b) {
        try ensure(x.count == y.count, "a vector of \(x.count) values, expected \(y.count)")
        for (u, v) in zip(x, y) { worst = max(worst, abs(u - v)) }
    }
    return worst
}

let dir = CommandLine.arguments[1]
let texts = try String(contentsOfFile: "\(dir)/texts.txt", encoding: .utf8).split(separator: "\n").map(String.init)
let reference = try rows("\(dir)/embeddings.txt").map { $0.map { Float(String($0))! } }
var info: [String: String] = [:]
for r in try rows("\(dir)/info.txt") { info[String(r[0])] = String(r[1]) }
let packagePath = "\(dir)/model.bertling"

let model = try BertlingModel.fromFile(path: packagePath, options: LoadOptions())

check("embed from a file matches the Rust runtime within 1e-5") {
    let d = try maxDiff(try model.embed(texts: texts), reference)
    try ensure(d <= 1e-5, "max |difference| \(d)")
}
check("embed from bytes gives the same vectors") {
    let bytes = try Data(contentsOf: URL(fileURLWithPath: packagePath))
    let m = try BertlingModel.fromBytes(bytes: bytes, options: LoadOptions(backend: .cpu, threads: 1))
    let d = try maxDiff(try m.embed(texts: texts), reference)
    try ensure(d <= 1e-5, "max |difference| \(d)")
}
check("tokenize gives the runtime's ids and type ids") {
    let tokens = try model.tokenize(texts: texts)
    let ids = try rows("\(dir)/ids.txt").map { $0.map { Int32(String($0))! } }
    let typeIds = try rows("\(dir)/type_ids.txt").map { $0.map { Int32(String($0))! } }
    try ensure(tokens.map { $0.ids } == ids, "ids \(tokens.map { $0.ids })")
    try ensure(tokens.map { $0.typeIds } == typeIds, "type ids \(tokens.map { $0.typeIds })")
}
check("info describes the 4-bit package") {
    let i = try model.info()
    try ensure(i.parameters == Int64(info["parameters"]!)!, "parameters \(i.parameters)")
    try ensure(i.outputWidth == Int32(info["output_width"]!)!, "output width \(i.outputWidth)")
    try ensure(i.maxSeqLen == Int32(info["max_seq_len"]!)!, "max seq len \(i.maxSeqLen)")
    try ensure(i.matrixBits == [4], "matrix bits \(i.matrixBits)")
    try ensure(i.embeddingBits == [8], "embedding bits \(i.embeddingBits)")
    try ensure(i.blocks.count == Int(info["blocks"]!)!, "blocks \(i.blocks)")
    try ensure(i.blocks[0] == "attention w384 h12xd32", "first block \(i.blocks[0])")
    try ensure(i.labels.isEmpty, "labels \(i.labels)")
    try ensure(i.bytes > 0 && i.bytes < i.parameters * 4, "bytes \(i.bytes)")
    try ensure(i.specJson.contains("\"blocks\""), "spec \(i.specJson.prefix(200))")
}
check("a truncated package is InvalidModel") {
    _ = try expectError("InvalidModel", { if case .InvalidModel = $0 { return true } else { return false } }) {
        _ = try BertlingModel.fromFile(path: "\(dir)/truncated.bertling", options: LoadOptions())
    }
}
check("garbage bytes are InvalidModel") {
    _ = try expectError("InvalidModel", { if case .InvalidModel = $0 { return true } else { return false } }) {
        _ = try BertlingModel.fromBytes(bytes: Data("not a model".utf8), options: LoadOptions())
    }
}
check("a missing file is Io, and its message names the file") {
    let e = try expectError("Io", { if case .Io = $0 { return true } else { return false } }) {
        _ = try BertlingModel.fromFile(path: "\(dir)/missing.bertling", options: LoadOptions())
    }
    try ensure("\(e)".contains("missing.bertling"), "message: \(e)")
}
check("classify without a head is NoClassificationHead") {
    let isNoHead: (BertlingError) -> Bool = { if case .NoClassificationHead = $0 { return true } else { return false } }
    _ = try expectError("NoClassificationHead", isNoHead) { _ = try model.classify(texts: texts) }
    _ = try expectError("NoClassificationHead", isNoHead) {
        _ = try model.classifyPairs(pairs: [TextPair(first: "a", second: "b")])
    }
}
check("tag gives the runtime's words, labels and probabilities, as String.Index ranges") {
    // tag.txt: per text the word count, then per word its UTF-8 byte range, label id, probability.
    let labels = try String(contentsOfFile: "\(dir)/tiny/tag_labels.txt", encoding: .utf8)
        .split(separator: "\n").map(String.init)
    let tagger = try BertlingModel.fromFile(path: "\(dir)/tiny/tagger.bertling", options: LoadOptions())
    let (taggerHead, modelHead) = (try tagger.info().head, try model.info().head)
    try ensure(taggerHead == "token" && modelHead == "none", "heads \(taggerHead) \(modelHead)")
    var words = 0
    for (text, row) in zip(texts, try rows("\(dir)/tiny/tag.txt")) {
        let tags = try tagger.tag(text: text)
        try ensure(tags.count == Int(row[0])!, "'\(text)': \(tags.count) words, expected \(row[0])")
        for (i, t) in tags.enumerated() {
            let r = row[(1 + 4 * i)..<(5 + 4 * i)].map { String($0) }
            try ensure(String(text[t.start..<t.end]) == t.word, "'\(text)': \(t)")
            let bytes = text.utf8.distance(from: text.startIndex, to: t.start)
            let end = text.utf8.distance(from: text.startIndex, to: t.end)
            try ensure(bytes == Int(r[0])! && end == Int(r[1])!, "'\(text)': \(t) vs \(r)")
            try ensure(t.label == labels[Int(r[2])!], "'\(text)': \(t) vs \(r)")
            try ensure(abs(t.probability - Float(r[3])!) <= 1e-5, "'\(text)': \(t) vs \(r)")
        }
        words += tags.count
    }
    try ensure(words > 0, "no words tagged")
    let isNoHead: (BertlingError) -> Bool = { if case .NoClassificationHead = $0 { return true } else { return false } }
    _ = try expectError("NoClassificationHead", isNoHead) { _ = try model.tag(text: "a text") }
    _ = try expectError("NoClassificationHead", isNoHead) { _ = try tagger.classify(texts: texts) }
}
check("negative threads are InvalidArgument") {
    _ = try expectError("InvalidArgument", { if case .InvalidArgument = $0 { return true } else { return false } }) {
        _ = try BertlingModel.fromFile(path: packagePath, options: LoadOptions(threads: -1))
    }
}
check("cosineSimilarity matches a hand computation") {
    // (1,2,3)·(4,5,6) = 32; |a| = sqrt(14), |b| = sqrt(77)
    let c = try cosineSimilarity(a: [1, 2, 3], b: [4, 5, 6])
    try ensure(abs(Double(c) - 32 / (14.0 * 77.0).squareRoot()) < 1e-6, "cosine \(c)")
    try ensure(try cosineSimilarity(a: [0, 0], b: [1, 2]) == 0, "zero vector")
    let e = try model.embed(texts: Array(texts.prefix(2)))
    let dot = zip(e[0], e[1]).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    let n0 = e[0].reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
    let n1 = e[1].reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
    let c2 = try cosineSimilarity(a: e[0], b: e[1])
    try ensure(abs(Double(c2) - dot / (n0 * n1)) < 1e-5, "cosine \(c2), by hand \(dot / (n0 * n1))")
    _ = try expectError("InvalidArgument", { if case .InvalidArgument = $0 { return true } else { return false } }) {
        _ = try cosineSimilarity(a: [1], b: [1, 2])
    }
}
check("similar sentences are closer than unrelated ones") {
    // texts 0 and 1 are paraphrases, text 2 is unrelated (test.sh writes them so).
    let e = try model.embed(texts: Array(texts.prefix(3)))
    let near = try cosineSimilarity(a: e[0], b: e[1])
    let far = try cosineSimilarity(a: e[0], b: e[2])
    try ensure(near > far + 0.2, "cosines \(near) \(far)")
}
check("cancel() fails the running call with Cancelled; the model works afterwards") {
    // Built step by step: one expression of this is too much for the Swift type checker.
    var texts512: [String] = []
    for i in 0..<512 {
        let first: String = texts[i % texts.count]
        let second: String = texts[(i + 1) % texts.count]
        texts512.append(first + " " + second)
    }
    let long = texts512
    // The worker's result, behind a lock (a class, so the thread closure captures no var).
    final class Outcome: @unchecked Sendable {
        private let lock = NSLock()
        private var value: Result<[[Float]], Error>? = nil
        func set(_ v: Result<[[Float]], Error>) { lock.lock(); value = v; lock.unlock() }
        func get() -> Result<[[Float]], Error>? { lock.lock(); defer { lock.unlock() }; return value }
    }
    let outcome = Outcome()
    let worker = Thread {
        outcome.set(Result { try model.embed(texts: long) })
    }
    worker.start()
    // Cancel until the call ends, so the test does not depend on when it starts.
    while true {
        if let done = outcome.get() {
            guard case .failure(let error) = done, let e = error as? BertlingError, case .Cancelled = e else {
                throw Failure(description: "outcome \(done)")
            }
            break
        }
        model.cancel()
        Thread.sleep(forTimeInterval: 0.005)
    }
    let d = try maxDiff(try model.embed(texts: texts), reference)
    try ensure(d <= 1e-5, "after cancel: max |difference| \(d)")
}
check("profileLatencyTable measures every op of a small search space") {
    let json = try profileLatencyTable(backend: .cpu, widths: [64], bits: [4], group: 32, seqLens: [8], runs: 2, threads: 1)
    let table = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
    try ensure(table["format"] as? String == "bertling-latency-table", "format \(String(describing: table["format"]))")
    // width 64: attention with 32- and 64-wide heads, 4 feed-forward (1, 1.5, 2, 4 x 64),
    // 3 convolutions, the 64 -> 64 projection
    let keys = (table["entries"] as! [[String: Any]]).map { $0["key"] as! String }
    try ensure(keys.count == 10, "keys \(keys)")
    try ensure(keys.contains("feed_forward/w64/i96/w4g32/s8/b1"), "keys \(keys)")
    try ensure(keys.contains("feed_forward/w64/i256/w4g32/s8/b1"), "keys \(keys)")
    try ensure(keys.contains("projection/w64/o64/w4g32/s8/b1"), "keys \(keys)")
    // and the width's fixed cost: a model of one identity block
    let fixed = ((table["fixed"] as? [[String: Any]]) ?? []).map { $0["key"] as! String }
    try ensure(fixed == ["identity/w64/w4g32/s8/b1"], "fixed \(fixed)")
    // W4A8: the integer kernels the search's students run on
    let a8 = try profileLatencyTable(backend: .cpu, widths: [64], bits: [4], group: 32, seqLens: [8], runs: 1, threads: 1, actBits: 8)
    try ensure(a8.contains("\"key\": \"attention/w64/h2xd32/w4g32a8/s8/b1\""), String(a8.prefix(600)))
    _ = try expectError("InvalidArgument", { if case .InvalidArgument = $0 { return true } else { return false } }) {
        _ = try profileLatencyTable(backend: .cpu, bits: [1])
    }
    _ = try expectError("InvalidArgument", { if case .InvalidArgument = $0 { return true } else { return false } }) {
        _ = try profileLatencyTable(backend: .cpu, bits: [4], actBits: 3)
    }
}

print("\(passed) passed, \(failed) failed")
exit(failed > 0 ? 1 : 0)
