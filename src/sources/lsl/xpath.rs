//! A syntax check of LSL predicates (XPath 1.0 expressions), so that a typo is a located error
//! instead of "found 0 streams".
//!
//! liblsl evaluates a predicate as `//info[<predicate>]` with pugixml inside every outlet; an
//! expression pugixml cannot compile matches nothing there, silently. [`check`] parses the
//! expression by the XPath 1.0 grammar (operators, paths with axes and node tests, predicates,
//! literals, numbers and the core function library with its arities) and reports the first
//! character where it goes wrong. Variables are refused: liblsl binds none.
//!
//! ```
//! use heloflow::sources::lsl::xpath::check;
//!
//! assert!(check("type='EEG' and starts-with(name, 'Muse')").is_ok());
//! assert!(check("count(desc/channels/channel) >= 4").is_ok());
//! let error = check("type='EEG' and (name='x'").unwrap_err();
//! assert_eq!(error.column, 25); // one past the end: the `)` is missing
//! ```

/// Where and why a predicate is not valid XPath.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XPathError {
    /// 1-based character position of the problem (one past the end for a truncated expression).
    pub column: usize,
    /// What is wrong there.
    pub message: String,
}

impl std::fmt::Display for XPathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at character {}: {}", self.column, self.message)
    }
}

/// Checks that `predicate` is one complete XPath 1.0 expression liblsl can evaluate.
pub fn check(predicate: &str) -> Result<(), XPathError> {
    let tokens = tokenize(predicate)?;
    let mut parser = Parser {
        tokens: &tokens,
        at: 0,
        end: predicate.chars().count() + 1,
    };
    if tokens.is_empty() {
        return Err(parser.error_here("the predicate is empty"));
    }
    parser.expr()?;
    match parser.peek() {
        None => Ok(()),
        Some(token) => Err(XPathError {
            column: token.column,
            message: format!(
                "unexpected {} after a complete expression",
                token.kind.describe()
            ),
        }),
    }
}

/// The core function library: name, least and most arguments (`usize::MAX`: any more).
const FUNCTIONS: &[(&str, usize, usize)] = &[
    ("last", 0, 0),
    ("position", 0, 0),
    ("count", 1, 1),
    ("id", 1, 1),
    ("local-name", 0, 1),
    ("namespace-uri", 0, 1),
    ("name", 0, 1),
    ("string", 0, 1),
    ("concat", 2, usize::MAX),
    ("starts-with", 2, 2),
    ("contains", 2, 2),
    ("substring-before", 2, 2),
    ("substring-after", 2, 2),
    ("substring", 2, 3),
    ("string-length", 0, 1),
    ("normalize-space", 0, 1),
    ("translate", 3, 3),
    ("boolean", 1, 1),
    ("not", 1, 1),
    ("true", 0, 0),
    ("false", 0, 0),
    ("lang", 1, 1),
    ("number", 0, 1),
    ("sum", 1, 1),
    ("floor", 1, 1),
    ("ceiling", 1, 1),
    ("round", 1, 1),
];

const AXES: &[&str] = &[
    "ancestor",
    "ancestor-or-self",
    "attribute",
    "child",
    "descendant",
    "descendant-or-self",
    "following",
    "following-sibling",
    "namespace",
    "parent",
    "preceding",
    "preceding-sibling",
    "self",
];

const NODE_TYPES: &[&str] = &["comment", "text", "processing-instruction", "node"];

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    /// `( ) [ ] , @ :: / // | + - = != < <= > >= . ..`
    Symbol(&'static str),
    /// `*`: multiplication or a name test, told apart by what precedes it.
    Star,
    /// A (possibly prefixed) name, or `prefix:*`.
    Name(String),
    /// `and`, `or`, `div`, `mod` in operator position.
    Operator(&'static str),
    Literal,
    Number,
    Variable,
}

impl Kind {
    fn describe(&self) -> String {
        match self {
            Kind::Symbol(s) | Kind::Operator(s) => format!("`{s}`"),
            Kind::Star => "`*`".to_string(),
            Kind::Name(name) => format!("name `{name}`"),
            Kind::Literal => "a string".to_string(),
            Kind::Number => "a number".to_string(),
            Kind::Variable => "a variable".to_string(),
        }
    }
}

#[derive(Clone, Debug)]
struct Token {
    kind: Kind,
    column: usize,
}

fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '\u{B7}')
}

/// Splits the expression into tokens (XPath 1.0, section 3.7, with its rules telling `*` and
/// operator names from name tests).
fn tokenize(text: &str) -> Result<Vec<Token>, XPathError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens: Vec<Token> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        // After these (or at the start) a `*` or a name is a name test, otherwise an operator.
        let operand_expected = tokens.last().is_none_or(|t| {
            matches!(
                t.kind,
                Kind::Symbol("@" | "::" | "(" | "[" | "," | "/" | "//" | "|" | "+" | "-")
                    | Kind::Symbol("=" | "!=" | "<" | "<=" | ">" | ">=")
                    | Kind::Operator(_)
            )
        });
        let next = chars.get(i + 1).copied();
        let (kind, length) = match c {
            '(' | ')' | '[' | ']' | ',' | '@' | '|' | '+' | '-' | '=' => {
                let symbol = ["(", ")", "[", "]", ",", "@", "|", "+", "-", "="][match c {
                    '(' => 0,
                    ')' => 1,
                    '[' => 2,
                    ']' => 3,
                    ',' => 4,
                    '@' => 5,
                    '|' => 6,
                    '+' => 7,
                    '-' => 8,
                    _ => 9,
                }];
                (Kind::Symbol(symbol), 1)
            }
            '!' if next == Some('=') => (Kind::Symbol("!="), 2),
            '<' if next == Some('=') => (Kind::Symbol("<="), 2),
            '<' => (Kind::Symbol("<"), 1),
            '>' if next == Some('=') => (Kind::Symbol(">="), 2),
            '>' => (Kind::Symbol(">"), 1),
            '/' if next == Some('/') => (Kind::Symbol("//"), 2),
            '/' => (Kind::Symbol("/"), 1),
            ':' if next == Some(':') => (Kind::Symbol("::"), 2),
            '*' if operand_expected => (Kind::Name("*".into()), 1),
            '*' => (Kind::Star, 1),
            '.' if next == Some('.') => (Kind::Symbol(".."), 2),
            '.' if next.is_some_and(|d| d.is_ascii_digit()) => {
                (Kind::Number, 1 + digits(&chars[i + 1..]))
            }
            '.' => (Kind::Symbol("."), 1),
            '\'' | '"' => match chars[i + 1..].iter().position(|&q| q == c) {
                Some(close) => (Kind::Literal, close + 2),
                None => {
                    return Err(XPathError {
                        column,
                        message: format!("this string has no closing {c}"),
                    })
                }
            },
            d if d.is_ascii_digit() => {
                let mut length = digits(&chars[i..]);
                if chars.get(i + length) == Some(&'.') {
                    length += 1 + digits(&chars[i + length + 1..]);
                }
                (Kind::Number, length)
            }
            '$' => {
                let length = name_length(&chars[i + 1..]);
                if length == 0 {
                    return Err(XPathError {
                        column,
                        message: "`$` must start a variable name".into(),
                    });
                }
                (Kind::Variable, 1 + length)
            }
            n if is_name_start(n) => {
                let mut length = name_length(&chars[i..]);
                // A prefixed name `p:local` or `p:*` (but not the axis separator `::`).
                if chars.get(i + length) == Some(&':') && chars.get(i + length + 1) != Some(&':') {
                    match chars.get(i + length + 1) {
                        Some('*') => length += 2,
                        Some(&n) if is_name_start(n) => {
                            length += 1 + name_length(&chars[i + length + 1..]);
                        }
                        _ => {
                            return Err(XPathError {
                                column: i + length + 1,
                                message: "`:` must join a prefix and a name (`::` follows an axis)"
                                    .into(),
                            })
                        }
                    }
                }
                let name: String = chars[i..i + length].iter().collect();
                let kind = match name.as_str() {
                    "and" if !operand_expected => Kind::Operator("and"),
                    "or" if !operand_expected => Kind::Operator("or"),
                    "div" if !operand_expected => Kind::Operator("div"),
                    "mod" if !operand_expected => Kind::Operator("mod"),
                    _ => Kind::Name(name),
                };
                (kind, length)
            }
            other => {
                return Err(XPathError {
                    column,
                    message: format!("`{other}` cannot appear in an XPath expression"),
                })
            }
        };
        tokens.push(Token { kind, column });
        i += length;
    }
    Ok(tokens)
}

fn digits(chars: &[char]) -> usize {
    chars.iter().take_while(|c| c.is_ascii_digit()).count()
}

fn name_length(chars: &[char]) -> usize {
    match chars.first() {
        Some(&c) if is_name_start(c) => {
            1 + chars[1..]
                .iter()
                .take_while(|&&c| is_name_char(c) && c != ':')
                .count()
        }
        _ => 0,
    }
}

struct Parser<'a> {
    tokens: &'a [Token],
    at: usize,
    end: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn peek_kind(&self, ahead: usize) -> Option<&Kind> {
        self.tokens.get(self.at + ahead).map(|t| &t.kind)
    }

    fn error_here(&self, message: impl Into<String>) -> XPathError {
        XPathError {
            column: self.peek().map_or(self.end, |t| t.column),
            message: message.into(),
        }
    }

    fn expected(&self, what: &str) -> XPathError {
        match self.peek() {
            Some(token) => XPathError {
                column: token.column,
                message: format!("expected {what}, found {}", token.kind.describe()),
            },
            None => XPathError {
                column: self.end,
                message: format!("expected {what}, but the predicate ends"),
            },
        }
    }

    fn eat(&mut self, kind: &Kind) -> bool {
        if self.peek_kind(0) == Some(kind) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, symbol: &'static str) -> Result<(), XPathError> {
        if self.eat(&Kind::Symbol(symbol)) {
            Ok(())
        } else {
            Err(self.expected(&format!("`{symbol}`")))
        }
    }

    fn expr(&mut self) -> Result<(), XPathError> {
        self.binary(0)
    }

    /// Binary operators by precedence level: or, and, equality, relational, additive,
    /// multiplicative; below them unary minus and unions.
    fn binary(&mut self, level: usize) -> Result<(), XPathError> {
        const LEVELS: [&[Kind]; 6] = [
            &[Kind::Operator("or")],
            &[Kind::Operator("and")],
            &[Kind::Symbol("="), Kind::Symbol("!=")],
            &[
                Kind::Symbol("<"),
                Kind::Symbol("<="),
                Kind::Symbol(">"),
                Kind::Symbol(">="),
            ],
            &[Kind::Symbol("+"), Kind::Symbol("-")],
            &[Kind::Star, Kind::Operator("div"), Kind::Operator("mod")],
        ];
        let operand = |parser: &mut Self| {
            if level + 1 < LEVELS.len() {
                parser.binary(level + 1)
            } else {
                parser.unary()
            }
        };
        operand(self)?;
        while self
            .peek_kind(0)
            .is_some_and(|kind| LEVELS[level].contains(kind))
        {
            self.at += 1;
            operand(self)?;
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<(), XPathError> {
        while self.eat(&Kind::Symbol("-")) {}
        self.path()?;
        while self.eat(&Kind::Symbol("|")) {
            self.path()?;
        }
        Ok(())
    }

    /// A location path, or a filter expression optionally followed by a relative path.
    fn path(&mut self) -> Result<(), XPathError> {
        let Some(kind) = self.peek_kind(0).cloned() else {
            return Err(self.expected("an expression"));
        };
        let is_primary = match &kind {
            Kind::Literal | Kind::Number | Kind::Variable | Kind::Symbol("(") => true,
            Kind::Name(name) => {
                self.peek_kind(1) == Some(&Kind::Symbol("("))
                    && !NODE_TYPES.contains(&name.as_str())
            }
            _ => false,
        };
        if is_primary {
            self.primary()?;
            self.predicates()?;
            if self.eat(&Kind::Symbol("/")) || self.eat(&Kind::Symbol("//")) {
                self.relative_path()?;
            }
            return Ok(());
        }
        if !self.step_starts() && !matches!(kind, Kind::Symbol("/" | "//")) {
            return Err(self.expected("an expression"));
        }
        if self.eat(&Kind::Symbol("//")) {
            return self.relative_path();
        }
        if self.eat(&Kind::Symbol("/")) {
            // A lone `/` (the root) is complete when no step can follow.
            if self.step_starts() {
                self.relative_path()?;
            }
            return Ok(());
        }
        self.relative_path()
    }

    fn step_starts(&self) -> bool {
        matches!(
            self.peek_kind(0),
            Some(Kind::Name(_) | Kind::Symbol("@" | "." | ".."))
        )
    }

    fn relative_path(&mut self) -> Result<(), XPathError> {
        self.step()?;
        while self.eat(&Kind::Symbol("/")) || self.eat(&Kind::Symbol("//")) {
            self.step()?;
        }
        Ok(())
    }

    fn step(&mut self) -> Result<(), XPathError> {
        if self.eat(&Kind::Symbol(".")) || self.eat(&Kind::Symbol("..")) {
            return Ok(());
        }
        if !self.eat(&Kind::Symbol("@")) {
            if let (Some(Kind::Name(axis)), Some(Kind::Symbol("::"))) =
                (self.peek_kind(0), self.peek_kind(1))
            {
                if !AXES.contains(&axis.as_str()) {
                    return Err(self.error_here(format!("`{axis}` is not an XPath axis")));
                }
                self.at += 2;
            }
        }
        let Some(Kind::Name(name)) = self.peek_kind(0).cloned() else {
            return Err(self.expected("a step (a name, `*`, `@name`, `.` or `..`)"));
        };
        self.at += 1;
        if self.eat(&Kind::Symbol("(")) {
            if !NODE_TYPES.contains(&name.as_str()) {
                return Err(self.error_here(format!("`{name}(` is not a node test")));
            }
            if name == "processing-instruction" {
                self.eat(&Kind::Literal);
            }
            self.expect(")")?;
        }
        self.predicates()
    }

    fn predicates(&mut self) -> Result<(), XPathError> {
        while self.eat(&Kind::Symbol("[")) {
            self.expr()?;
            self.expect("]")?;
        }
        Ok(())
    }

    fn primary(&mut self) -> Result<(), XPathError> {
        let token = self.peek().cloned().expect("checked by the caller");
        match token.kind {
            Kind::Literal | Kind::Number => {
                self.at += 1;
                Ok(())
            }
            Kind::Variable => Err(XPathError {
                column: token.column,
                message: "variables are not available in LSL predicates".into(),
            }),
            Kind::Symbol("(") => {
                self.at += 1;
                self.expr()?;
                self.expect(")")
            }
            Kind::Name(name) => {
                self.at += 2;
                let mut arguments = 0;
                if !self.eat(&Kind::Symbol(")")) {
                    loop {
                        self.expr()?;
                        arguments += 1;
                        if self.eat(&Kind::Symbol(")")) {
                            break;
                        }
                        if !self.eat(&Kind::Symbol(",")) {
                            return Err(self.expected("`,` or `)`"));
                        }
                    }
                }
                let Some(&(_, least, most)) = FUNCTIONS.iter().find(|f| f.0 == name) else {
                    return Err(XPathError {
                        column: token.column,
                        message: format!("`{name}` is not an XPath 1.0 function"),
                    });
                };
                if arguments < least || arguments > most {
                    let wanted = match (least, most) {
                        (l, m) if l == m => format!("{l}"),
                        (l, usize::MAX) => format!("at least {l}"),
                        (l, m) => format!("{l} to {m}"),
                    };
                    return Err(XPathError {
                        column: token.column,
                        message: format!("`{name}` takes {wanted} argument(s), not {arguments}"),
                    });
                }
                Ok(())
            }
            _ => Err(self.expected("an expression")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn predicates_liblsl_users_write_are_accepted() {
        for good in [
            "type='EEG'",
            "name='Muse' and type=\"EEG\"",
            "source_id='a' or (hostname='b' and nominal_srate>=256)",
            "starts-with(name, 'Muse') and not(contains(type, 'Acc'))",
            "count(desc/channels/channel)=4",
            "desc/subject='P01'",
            "channel_count * 2 > 3 - 1 div 1 mod 2",
            "//info/name='x' | /info",
            "@id='x' or child::desc/descendant::label[.='Cz'] or ../name = 'a'",
            "number(nominal_srate) = 256.0 and -nominal_srate < .5",
            "text() = 'x' or node() or desc/*[1]/name = 'y' or p:*",
            "(type='EEG')",
            "concat(name, '-', type) = 'a-b'",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn malformed_predicates_are_located() {
        for (bad, column, what) in [
            ("type='EEG", 6, "no closing"),
            ("type=='EEG'", 6, "expected an expression"),
            ("type='EEG' and", 15, "ends"),
            ("(type='EEG'", 12, "expected `)`"),
            ("type='EEG']", 11, "unexpected `]`"),
            ("type='EEG'] | //x[1", 11, "unexpected `]`"),
            ("strts-with(name, 'M')", 1, "not an XPath 1.0 function"),
            ("contains(name)", 1, "takes 2 argument(s), not 1"),
            ("type = $kind", 8, "variables"),
            ("foo::bar", 1, "not an XPath axis"),
            ("name = 'a' # x", 12, "cannot appear"),
            ("", 1, "empty"),
            ("   ", 4, "empty"),
            ("name='a' name='b'", 10, "unexpected name"),
            ("desc/[1]", 6, "expected a step"),
        ] {
            let error = check(bad).expect_err(bad);
            assert_eq!(error.column, column, "{bad}: {error}");
            assert!(error.message.contains(what), "{bad}: {error}");
        }
    }

    /// liblsl itself (pugixml) matches a stream with what the check accepts, and silently matches
    /// nothing with what it refuses: the error the check exists to report.
    #[test]
    fn liblsl_agrees_and_silently_matches_nothing_for_what_is_refused() {
        let info = lsl::StreamInfo::new("Muse", "EEG", 4, 256.0, lsl::ChannelFormat::Float32, "m1")
            .expect("a stream info");
        for good in [
            "type='EEG' and starts-with(name, 'Mu')",
            "channel_count=4 and nominal_srate >= 256",
            "(source_id='m1' or name='x') and not(contains(type, 'Acc'))",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
            assert!(info.matches_query(good), "{good}");
        }
        for bad in [
            "type='EEG",
            "type='EEG' and",
            "strts-with(name, 'Mu')",
            "type=='EEG'",
            "(type='EEG'",
        ] {
            assert!(check(bad).is_err(), "{bad}");
            assert!(!info.matches_query(bad), "{bad}");
        }
    }

    proptest! {
        /// Any text: a verdict, never a panic, and an error's column lies within the text (or
        /// just past its end).
        #[test]
        fn any_text_gets_a_verdict(text in "\\PC{0,40}") {
            if let Err(error) = check(&text) {
                prop_assert!(error.column >= 1 && error.column <= text.chars().count() + 1);
            }
        }

        /// Random mixtures of XPath's own pieces: same.
        #[test]
        fn xpath_like_text_gets_a_verdict(parts in proptest::collection::vec(prop_oneof![
            Just("name"), Just("'x'"), Just("("), Just(")"), Just("["), Just("]"), Just("and"),
            Just("or"), Just("="), Just("*"), Just("/"), Just("//"), Just("@"), Just("::"),
            Just("child"), Just("count"), Just(","), Just("1.5"), Just("-"), Just("."), Just(".."),
            Just("|"), Just("$v"), Just(":"), Just("text"), Just(" "),
        ], 0..16)) {
            let text = parts.concat();
            if let Err(error) = check(&text) {
                prop_assert!(error.column >= 1 && error.column <= text.chars().count() + 1);
            }
        }
    }
}
