//! What a pass over a sheet's part finds that calamine does not say (the rows it hides, the
//! cells calamine passes over), and the XML attribute reader those passes share: the types
//! `hidden_rows`, `xlsb_sheet` and `ods_bounds` hand each other, below all three.

use quick_xml::events::BytesStart;

/// What the pass over a sheet's part found that calamine does not say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SheetFacts {
    pub hidden: HiddenRows,
    /// Cells calamine passes over (an `.xlsb` formula whose value is an error, a rich-text
    /// string), by (row, column) from 0, in sheet order, with what they hold.
    pub passed_over: Vec<((u32, u32), PassedOver)>,
}

/// A cell calamine does not read, as the sheet's part holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum PassedOver {
    /// A formula whose value is a spreadsheet error, such as `#N/A`.
    Error(String),
    Text(String),
}

/// The rows of a sheet its XML marks hidden (numbers from 1), and whether it has an AutoFilter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HiddenRows {
    pub rows: Vec<u64>,
    pub filtered: bool,
}

/// The value of the attribute whose local name is `name` (`r:id` is `id`), XML's escapes
/// undone (`R&amp;D` is `R&D`); a value whose escapes do not parse is taken as written.
pub fn attribute(element: &BytesStart<'_>, name: &str) -> Option<String> {
    element
        .attributes()
        .filter_map(Result::ok)
        .find(|attribute| attribute.key.local_name().as_ref() == name)
        .map(|attribute| {
            let raw = attribute.value.to_string();
            match quick_xml::escape::unescape(&raw) {
                Ok(value) => value.into_owned(),
                Err(_) => raw,
            }
        })
}
