//! The shapes of AWS names the daemon accepts from its configuration and from AWS answers:
//! region names and ECR registry hosts. Pure checks, shared by `config` (which names the
//! variable in its error) and `ecr` (which checks an answer's `proxyEndpoint`).

/// The partitions' DNS suffixes of ECR registry hosts: commercial, China, and the isolated
/// partitions (us-iso, us-isob, eu-isoe, us-isof).
const ECR_SUFFIXES: [&str; 6] = [
    "amazonaws.com",
    "amazonaws.com.cn",
    "c2s.ic.gov",
    "sc2s.sgov.gov",
    "cloud.adc-e.uk",
    "csp.hci.ic.gov",
];

/// The compass part of a region name.
const DIRECTIONS: [&str; 9] = [
    "north",
    "south",
    "east",
    "west",
    "central",
    "northeast",
    "northwest",
    "southeast",
    "southwest",
];

/// The partition part of a region name between the area and the direction.
const PARTITIONS: [&str; 5] = ["gov", "iso", "isob", "isoe", "isof"];

/// Whether `region` has the form of an AWS region: `<area>-[<partition>-]<direction>-<n>`, with a
/// two-letter area (`us`, `eu`, `ap`, `cn`, `il`, `mx` ...), an optional partition (`gov`,
/// `iso`, `isob`, `isoe`, `isof`), a compass direction (`east`, `southeast`, `central` ...) and
/// a number from 1 to 99. `us-gov-west-1`, `cn-north-1`, `eu-isoe-west-1` pass; `a-b-1` does not.
pub fn is_region_name(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let (area, middle, number) = match parts.as_slice() {
        [area, direction, number] => (*area, (None, *direction), *number),
        [area, partition, direction, number] => (*area, (Some(*partition), *direction), *number),
        _ => return false,
    };
    let (partition, direction) = middle;
    area.len() == 2
        && area.bytes().all(|b| b.is_ascii_lowercase())
        && partition.is_none_or(|p| PARTITIONS.contains(&p))
        && DIRECTIONS.contains(&direction)
        && (1..=2).contains(&number.len())
        && number.bytes().all(|b| b.is_ascii_digit())
        && !number.starts_with('0')
}

/// Whether `host` (lower case, no port) has the form of a private ECR registry host:
/// `<12-digit account>.dkr.ecr[-fips].<region>.<partition suffix>`, or the dual-stack
/// `<account>.dkr-ecr[-fips].<region>.on.aws`. Returns the region when it does.
pub fn ecr_registry_region(host: &str) -> Option<&str> {
    let (account, rest) = host.split_once('.')?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (region, suffix_ok) = if let Some(rest) = rest
        .strip_prefix("dkr.ecr.")
        .or_else(|| rest.strip_prefix("dkr.ecr-fips."))
    {
        let (region, suffix) = rest.split_once('.')?;
        (region, ECR_SUFFIXES.contains(&suffix))
    } else {
        let rest = rest
            .strip_prefix("dkr-ecr.")
            .or_else(|| rest.strip_prefix("dkr-ecr-fips."))?;
        let (region, suffix) = rest.split_once('.')?;
        (region, suffix == "on.aws")
    };
    (suffix_ok && is_region_name(region)).then_some(region)
}

/// An IAM name of `min` to `max` characters of letters, digits and `+=,.@_-` (role names, role
/// session names).
pub fn is_iam_name(name: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_real_region_form_passes() {
        for region in [
            "us-east-1",
            "eu-west-1",
            "us-gov-west-1",
            "us-gov-east-1",
            "cn-north-1",
            "cn-northwest-1",
            "ap-southeast-4",
            "ap-northeast-3",
            "il-central-1",
            "me-central-1",
            "mx-central-1",
            "ca-west-1",
            "af-south-1",
            "sa-east-1",
            "eu-central-2",
            "us-iso-east-1",
            "us-iso-west-1",
            "us-isob-east-1",
            "eu-isoe-west-1",
            "us-isof-south-1",
            "us-isof-east-1",
        ] {
            assert!(is_region_name(region), "{region}");
        }
    }

    #[test]
    fn made_up_regions_are_refused() {
        for region in [
            "a-b-1",
            "eu-west",
            "eu-west-01",
            "eu-west-100",
            "Eu-west-1",
            "eu-upper-1",
            "us-foo-east-1",
            "usa-east-1",
            "eu-west-1-",
            "eu--west-1",
            "us-gov-iso-west-1",
            "",
            "eu-west-1/../x",
        ] {
            assert!(!is_region_name(region), "{region}");
        }
    }

    #[test]
    fn ecr_hosts_of_every_partition() {
        for (host, region) in [
            ("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "eu-west-1"),
            (
                "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
                "us-gov-west-1",
            ),
            (
                "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
                "cn-north-1",
            ),
            (
                "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov",
                "us-iso-east-1",
            ),
            (
                "123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
                "us-isob-east-1",
            ),
            ("123456789012.dkr-ecr.eu-west-1.on.aws", "eu-west-1"),
        ] {
            assert_eq!(ecr_registry_region(host), Some(region), "{host}");
        }
        for host in [
            "evil.example.com",
            "",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.example.com",
            "12345.dkr.ecr.eu-west-1.amazonaws.com",
            "123456789012.dkr.ecr.a-b-1.amazonaws.com",
            "123456789012.docker.ecr.eu-west-1.amazonaws.com",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.co",
        ] {
            assert_eq!(ecr_registry_region(host), None, "{host}");
        }
    }
}
