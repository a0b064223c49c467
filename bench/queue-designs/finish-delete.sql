DELETE FROM jobs WHERE id = ANY(:ids::bigint[]) AND state = 'running' AND locked_by = 'w' AND attempt = (:atts::int[])[array_position(:ids::bigint[], id)];
