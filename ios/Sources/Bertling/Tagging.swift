// Tagging in Swift's own string indices: the generated `tagSpans(text:)` gives each word's
// range in UTF-8 bytes and UTF-16 code units; this turns the bytes into `String.Index`.

/// One word of a tagged text: `text[start..<end] == word`, its label and the label's
/// probability.
public struct WordTag: Equatable {
    public let word: String
    public let start: String.Index
    public let end: String.Index
    public let label: String
    public let probability: Float
}

extension BertlingModel {
    /// The words of `text` (as the model's tokenizer splits them) with the labels of the
    /// model's token head, e.g. part-of-speech tags. Throws `BertlingError.NoClassificationHead`
    /// for a model without a token head and `.InvalidArgument` for a text longer than it takes.
    public func tag(text: String) throws -> [WordTag] {
        let utf8 = text.utf8
        let index = { (offset: Int32) -> String.Index in
            utf8.index(utf8.startIndex, offsetBy: Int(offset))
        }
        return try tagSpans(text: text).map { span in
            WordTag(word: span.word, start: index(span.utf8Start), end: index(span.utf8End),
                    label: span.label, probability: span.probability)
        }
    }
}
