package events

import "fmt"

// Rating is a record of the ratings topic (datagen quickstart ratings).
type Rating struct {
	RatingID   BigInt `json:"rating_id"`
	UserID     Int    `json:"user_id"`
	Stars      Int    `json:"stars"`
	RouteID    Int    `json:"route_id"`
	RatingTime BigInt `json:"rating_time"`
	Channel    String `json:"channel"`
	Message    String `json:"message"`
}

// DecodeRating decodes and validates a rating; rating_id is required (it identifies alerts).
func DecodeRating(data []byte) (Rating, error) {
	var r Rating
	if err := decodeObject(data, &r); err != nil {
		return r, err
	}
	if !r.RatingID.Valid {
		return r, fmt.Errorf("%w: rating_id", ErrMissingField)
	}
	return r, nil
}

// Customer is a row of demo.CUSTOMERS as Debezium's MySQL connector emits it (the `after` or
// `before` struct, or the flattened value of ExtractNewRecordState).
type Customer struct {
	ID         Int    `json:"id"`
	FirstName  String `json:"first_name"`
	LastName   String `json:"last_name"`
	Email      String `json:"email"`
	Gender     String `json:"gender"`
	ClubStatus String `json:"club_status"`
	Comments   String `json:"comments"`
	CreateTS   String `json:"create_ts"`
	UpdateTS   String `json:"update_ts"`
}

// RatingWithCustomer is a row of RATINGS_WITH_CUSTOMER_DATA.
type RatingWithCustomer struct {
	RatingID   BigInt `json:"RATING_ID"`
	Message    String `json:"MESSAGE"`
	Stars      Int    `json:"STARS"`
	Channel    String `json:"CHANNEL"`
	ID         Int    `json:"ID"`
	FullName   String `json:"FULL_NAME"`
	ClubStatus String `json:"CLUB_STATUS"`
	Email      String `json:"EMAIL"`
}

// UnhappyPlatinumCustomer is a row of UNHAPPY_PLATINUM_CUSTOMERS. RATING_ID is kept beyond the
// original's columns so that the alerter can send exactly one message per rating.
type UnhappyPlatinumCustomer struct {
	RatingID   BigInt `json:"RATING_ID"`
	FullName   String `json:"FULL_NAME"`
	ClubStatus String `json:"CLUB_STATUS"`
	Email      String `json:"EMAIL"`
	Stars      Int    `json:"STARS"`
	Message    String `json:"MESSAGE"`
}
